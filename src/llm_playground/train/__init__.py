"""Training our GPT: config (presets, YAML, --set), data batches, schedule, checkpoints, DDP, the trainer."""
