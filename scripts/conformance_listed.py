"""The conformance figure for the ops of issue 10's list: of the eligible ONNX node cases (first input and
first output float32) whose ops, subgraphs included, are all on the list of issue 10 section 1, how
many pass on both executors (onnx-import/tests/conformance_baseline.txt).

Usage: target/py-onnx/bin/python scripts/conformance_listed.py   (after scripts/setup.sh and the
conformance test)
"""
import os

import onnx

LISTED = """Expand Tile Pad Split Constant Sum Mean Max Min Reciprocal Erf Gelu Swish Mish Softsign HardSwish Hardmax Shrink PRelu
ThresholdedRelu Celu Sin Cos Tan Asin Acos Atan Sinh Cosh Asinh Acosh Atanh Floor Ceil Round Sign Mod ReduceMax ReduceMin ReduceProd ReduceL1 ReduceL2
ReduceLogSum ReduceLogSumExp ReduceSumSquare LayerNormalization RMSNormalization GroupNormalization InstanceNormalization
LpNormalization MeanVarianceNormalization LRN GlobalMaxPool LpPool ConvTranspose Resize Upsample DepthToSpace SpaceToDepth
MatMul Einsum SoftmaxCrossEntropyLoss NegativeLogLikelihoodLoss LSTM GRU RNN Loop Scan If Dropout MaxPool BatchNormalization
Attention RotaryEmbedding""".split()
LISTED = set(LISTED)
root = "target/onnx-node-cases"
passed = set(l.strip() for l in open("onnx-import/tests/conformance_baseline.txt") if l.strip() and not l.startswith("#"))
def ops(g):
    out = set()
    for n in g.node:
        out.add(n.op_type)
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH: out |= ops(a.g)
            for sg in a.graphs: out |= ops(sg)
    return out
F = onnx.TensorProto.FLOAT
elig = sub = subpass = 0
fails = []
for case in sorted(os.listdir(root)):
    p = os.path.join(root, case, "model.onnx")
    if not os.path.exists(p): continue
    m = onnx.load(p)
    g = m.graph
    try:
        if g.input[0].type.tensor_type.elem_type != F or g.output[0].type.tensor_type.elem_type != F: continue
    except IndexError:
        continue
    elig += 1
    o = ops(g)
    if o and o <= LISTED:
        sub += 1
        if case in passed: subpass += 1
        else: fails.append(case)
print("eligible", elig, "on the issue's lists", sub, "passed", subpass, f"{100*subpass/sub:.1f}%")
print("failing:", " ".join(fails))
