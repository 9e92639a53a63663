"""What a run leaves behind: the console summary and the JSON results file."""
