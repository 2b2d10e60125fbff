"""A trial's plan: strategy → stages (each a mixture with exact counts) and the data manifest."""
