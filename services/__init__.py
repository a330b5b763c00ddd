"""The three Fangpin services: intake, screening and casework."""
