"""Authentication of ACS, Event Grid and control API requests, and limits on hostile input."""
