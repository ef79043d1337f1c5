"""Names and sizes a run is configured by, importable without JAX (the command line builds
its parser and answers ``--help`` from these before anything heavy loads).

Owns: the convolution initialisations a DER encoder may use, the byte size of one stored
Atari image transition, and the MiB unit of the replay budget.
"""

# The convolution initialisations (networks.PatchConv.weight_init, DerConfig.conv_init,
# --conv-init): Flax's default, and PyTorch's (the released SEER code's).
CONV_INITS = ("lecun_normal", "pytorch")
DEFAULT_CONV_INIT = CONV_INITS[0]  # the flax modules' default
DER_CONV_INIT = "pytorch"  # DER's default, as the released SEER code initialises its convolutions

# Bytes of one Atari image transition: an 84x84 frame, action, reward, discount, flag.
ATARI_IMAGE_TRANSITION_BYTES = 84 * 84 + 4 + 4 + 4 + 1

MB = 2**20
