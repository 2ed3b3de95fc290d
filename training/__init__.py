"""Supervised fine-tuning (TRL) and the tiny offline model for tests and CPU runs."""
