"""Type stubs for the native record walker (``_wal.pyx``)."""

import numpy as np
import numpy.typing as npt

def scan_frames(
    buf: bytes | bytearray | memoryview, check_crc: bool = True
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint32], int]: ...
