"""Every command's help prints (a stray % in a help text breaks argparse's formatting of the whole list)."""

import pytest

from trainer.cli import TABLE, main


@pytest.mark.parametrize("argv", [["--help"]] + [[command.name, "--help"] for command in TABLE],
                         ids=lambda argv: " ".join(argv))
def test_help_prints_for_every_command(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: trainer") and "this is a bug" not in out
