"""D: every dataset the config builds, read the way its loader reads it, mapped by its own map function (the T checks count its tokens on the way)."""
