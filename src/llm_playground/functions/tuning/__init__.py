"""Fine-tuning the bundled model for function calling: generated examples and the LoRA training loop."""
