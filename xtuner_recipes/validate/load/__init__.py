"""L: mmengine loads the config, its imports resolve, and xtuner's train script would start it."""
