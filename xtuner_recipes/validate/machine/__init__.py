"""M and E: the model directory the config names, and this machine's training stack."""
