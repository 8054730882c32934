"""The rtl simulator: the accelerator RTL compiled with Verilator, driven from Python through a C ABI."""
