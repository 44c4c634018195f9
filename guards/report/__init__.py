"""Report: builds the JSON report from what the run recorded, reads it (fields), formats numbers once, and
renders Markdown, the terminal table, HTML, plots and run history."""
