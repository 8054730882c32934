"""On-chip buffers of the functional simulator, as numpy arrays shaped by the config."""

from __future__ import annotations

import numpy as np

from vta.isa import Config, MemType
from vta.isa.values import storage_dtype


class Scratchpads:
    """The uop, inp, wgt and acc buffers.

    inp is (depth, batch, block_in), wgt (depth, block_out, block_in) and acc
    (depth, batch, block_out), each in the narrowest signed type of its width
    (so assigning a wider result wraps to the width). The uop buffer is kept
    decoded, as three int64 index columns.
    """

    def __init__(self, config: Config) -> None:
        c = config
        self.config = c
        self.inp = np.zeros((c.inp_depth, c.batch, c.block_in), storage_dtype(c.inp_width))
        self.wgt = np.zeros((c.wgt_depth, c.block_out, c.block_in), storage_dtype(c.wgt_width))
        self.acc = np.zeros((c.acc_depth, c.batch, c.block_out), storage_dtype(c.acc_width))
        self.uop = np.zeros((3, c.uop_depth), np.int64)  # rows: dst_idx, src_idx, wgt_idx

    def array(self, mem: MemType) -> np.ndarray:
        """The buffer array that LOADs of ``mem`` fill (uop: the (3, depth) columns)."""
        return {MemType.INP: self.inp, MemType.WGT: self.wgt, MemType.ACC: self.acc, MemType.UOP: self.uop}[mem]
