"""The LightningModules of the five systems, one file each; plain nets live in ``nets/``."""
