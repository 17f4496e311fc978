"""What runs leave behind: model folders, reports, model cards, provenance and MLflow records."""
