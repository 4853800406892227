"""Training the LM (`stage=pretrain`, `stage=sft`): data, module, losses, the stage, export."""
