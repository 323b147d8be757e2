"""What the tap tells its user's log: structured fields, poll METRICs, estimates, no secrets."""
