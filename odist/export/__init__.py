"""The student a camera earned, exported for inference outside odist: ONNX (ONNX Runtime, TensorRT,
DeepStream) or a ``torch.export`` program (``.pt2``), with its classes, input size and normalisation in the
file's metadata, checked on the stream's frames. The package is also the library's export call:
``odist.export(run, stream_id, out)`` is ``odist.export.api.export_stream``.
"""

from odist._callable import make_callable
from odist.export.api import Exported, export_stream

__all__ = ["Exported", "export_stream"]

make_callable(__name__, export_stream)
