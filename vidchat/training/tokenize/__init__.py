"""Tokenizing clips into token shards (`stage=tokenize`), locally or on Ray workers."""
