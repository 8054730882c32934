"""Amaranth RTL of the accelerator, board platforms, Verilog generation and the bitstream flow."""
