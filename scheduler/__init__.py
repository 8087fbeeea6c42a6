"""Beat: the periodic maintenance jobs and their schedule."""
