"""The graph compiler: graph IR (`ir`), the ONNX importer (`onnx_import`), operators
(`ops`) and the pass pipeline (`passes`)."""

from .ir import Graph, GraphError, Module, Node, Value
from .onnx_import import import_onnx

__all__ = ["Graph", "GraphError", "Module", "Node", "Value", "import_onnx"]
