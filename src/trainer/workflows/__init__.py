"""The commands' workflows: train, evaluate, predict, tag, select, sweep, summarize, compare, label issues."""
