"""The engine-neutral expression IR of a rule: what the fast engines read.

* ``ops``: the one table of operations: arity, how the tracer recognises each, how C
  prints it, how the compiled engine's (Inductor's) body prints it, its value on floats;
* ``trace``: a rule run on symbols into a graph of those ops (options decided, numbers
  and tensors symbolic);
* ``hoisting``: the one split of a traced rule into per-step host scalars and the
  per-element body.

The C generator (optimlab.ckernel) and the compiled engine (optimlab.engines.inductor)
both print from it; neither keeps an op list of its own.
"""
