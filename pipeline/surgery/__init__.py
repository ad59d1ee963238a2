"""Layer surgery. Its front door is `pipeline.surgery.operate.operate`; each layer-policy variant's implementation is
registered beside it (`registry`): the token table's in `replace` and `transplant`, positions' in `positions`, the
body's and the head's in `body`. Below them: replacement tables (`tables`), static vectors (`vectors`,
`trained_vectors`), vocabulary transfer (`transfer`), added rows and rows trained alone (`rows`, `distill`), LoRA
(`lora`) and the freeze / finetune flags (`policies`)."""
