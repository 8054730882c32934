# One 4x4 weight tile on the tiny config: C = clip((A · Wᵀ) >> 2, 0, 127) as int8.
# A is 8 rows of 4 inputs (8 inp elements); W is one 4x4 weight tile.
.config tiny
.data A int8 8x4 @0x000 random 1
.data W int8 4x4 @0x040 random 2
.data K uop 1 @0x080
  0 0 0
.data C int8 8x4 @0x100 output zeros

load uop sram=0 dram=K y=1 x=1
load inp sram=0 dram=A y=1 x=8 push=next
load wgt sram=0 dram=W y=1 x=1 push=next
gemm reset uops=0:1 iter=1,8 dst=0,1 pop=prev
gemm uops=0:1 iter=1,8 dst=0,1 src=0,1 pop=prev
alu shr uops=0:1 iter=1,8 dst=0,1 imm=2
alu max uops=0:1 iter=1,8 dst=0,1 imm=0
alu min uops=0:1 iter=1,8 dst=0,1 imm=127 push=next
store out sram=0 dram=C y=1 x=8 pop=prev
finish
