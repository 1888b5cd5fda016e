"""Loop templates: the rule's C body (emit.py) inside one loop per storage layout.

One generated library steps every tensor of a param group in one call::

    int optimlab_step(int64_t tensors, void *const *ptrs, const int64_t *offsets,
                      const double *numbers, int threads);

``ptrs`` is role-major: ``ptrs[role * tensors + t]``, role 0 the params, 1 the gradients,
then each state key's parts in order (one array for a float storage; the codes, then
the block scales for 8-bit). ``offsets`` holds the prefix sums of the tensors' element
counts (``tensors + 1`` entries). The elements of all tensors are split evenly across
``threads`` OpenMP threads by count, not by tensor, at multiples of ``ALIGN`` elements
within a tensor (whole 64-byte lines; whole blocks with 8-bit state), so no two threads
write one cache line or one block.

Two loops:

* float storage only: one pass, element by element (gcc vectorises it, 256-bit);
* with 8-bit state, one pass per block of ``BLOCK`` elements held in L1: decode each
  code as it is read, run the rule, write the param and any float state, keep the new
  8-bit moments in a local buffer while tracking their largest magnitude, then encode
  the buffer with the new scale. A partial last block is the same loop, shorter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from optimlab.ckernel.conversions import HELPERS, UNIT
from optimlab.ckernel.emit import Body

BLOCK = 256
#: groups with fewer elements in all run on the calling thread. A parallel region costs
#: microseconds on an idle machine but waits for a descheduled thread on a busy one: the
#: char-transformer's AdamW step (117k elements) took 0.58 ms on one thread and 11.9 ms
#: on two with the 2 cores shared by ~5 runnable processes (benchmarks/README.md); torch
#: too keeps every op of that model on one thread (its grain is 32k elements per op)
SERIAL_BELOW = 1 << 17


@dataclass(frozen=True)
class Storage:
    """How one array is stored: its C element type, and its load and store in C."""

    name: str
    ctype: str
    load: str  # format with {x}: the stored element
    store: str  # format with {v}: the math-type value

    @property
    def blocked(self) -> bool:
        return self.name in ("s8", "u8", "raw8")

    @property
    def parts(self) -> int:
        return 2 if self.blocked else 1


STORAGES = {
    "f32": Storage("f32", "float", "(mt){x}", "(float)({v})"),
    "f64": Storage("f64", "double", "(mt){x}", "(double)({v})"),
    "bf16": Storage("bf16", "uint16_t", "(mt)bf16_load({x})", "bf16_store((float)({v}))"),
    "f16": Storage("f16", "uint16_t", "(mt)f16_load({x})", "f16_store((float)({v}))"),
    # 8-bit blockwise (codecs.Blockwise8bit): loads and stores are the block loop's
    "s8": Storage("s8", "int8_t", "", ""),
    "u8": Storage("u8", "uint8_t", "", ""),
    # the same-traffic floor's 8-bit state: codes and scales read and written unchanged
    "raw8": Storage("raw8", "uint8_t", "(mt){x}", "(uint8_t)(int32_t)({v})"),
}


def source(body: Body, param: str, grad: str, storages: Sequence[str], double: bool,
           title: str) -> str:
    """The C source of one kernel (``param``, ``grad``, ``storages``: STORAGES names)."""
    kinds = [STORAGES[name] for name in storages]
    blocked = any(k.blocked for k in kinds)
    span = _block_span(body, param, grad, kinds) if blocked else \
        _flat_span(body, param, grad, kinds)
    align = BLOCK if blocked else 64
    roles = 2 + sum(k.parts for k in kinds)
    return _PREAMBLE.format(title=title, mt="double" if double else "float",
                            suffix="" if double else "f", block=BLOCK, align=align,
                            roles=roles, hoisted=max(body.hoisted, 1),
                            serial=SERIAL_BELOW) + HELPERS + span + _DRIVER.replace(
        "{prologue}", _indent(body.prologue, 4))


def _indent(lines: Sequence[str], spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in lines)


def _pointers(param: str, grad: str, kinds: Sequence[Storage]) -> list[tuple[str, str]]:
    """(parameter declaration, argument) of each array the loop reads or writes."""
    pc, gc = STORAGES[param].ctype, STORAGES[grad].ctype
    pairs = [(f"{pc} *restrict p", f"({pc} *)ROLE(0)"),
             (f"const {gc} *restrict g", f"(const {gc} *)ROLE(1)")]
    role = 2
    for i, kind in enumerate(kinds):
        pairs.append((f"{kind.ctype} *restrict s{i}", f"({kind.ctype} *)ROLE({role})"))
        if kind.blocked:
            pairs.append((f"float *restrict scale{i}", f"(float *)ROLE({role + 1})"))
        role += kind.parts
    return pairs


def _functions(pointers: list[tuple[str, str]], prologue: Sequence[str], body: str) -> str:
    """The loop, as a function whose array parameters are ``restrict`` (gcc trusts
    restrict on parameters, not on local pointers: it would version the loop for
    aliasing), and the span that calls it on one tensor's arrays."""
    declarations = ",\n    ".join(d for d, _ in pointers)
    arguments = ",\n         ".join(a for _, a in pointers)
    return f"""
__attribute__((noinline))
static void loop(const struct job *restrict job, int64_t lo, int64_t hi,
    {declarations})
{{
{_indent(prologue, 4)}
{body}
}}

static void span(const struct job *job, int64_t t, int64_t lo, int64_t hi)
{{
    loop(job, lo, hi,
         {arguments});
}}
"""


def _hoisted(body: Body) -> list[str]:
    return [f"const mt h{k} = job->hoisted[{k}];" for k in range(body.hoisted)]


def _flat_span(body: Body, param: str, grad: str, kinds: Sequence[Storage]) -> str:
    loads = [f"const mt in_param = {STORAGES[param].load.format(x='p[i]')};",
             f"const mt in_grad = {STORAGES[grad].load.format(x='g[i]')};"]
    loads += [f"const mt in_{i} = {k.load.format(x=f's{i}[i]')};" for i, k in enumerate(kinds)]
    stores = [f"p[i] = {STORAGES[param].store.format(v=body.param)};"]
    stores += [f"s{i}[i] = {k.store.format(v=body.states[i])};" for i, k in enumerate(kinds)]
    loop = f"""    for (int64_t i = lo; i < hi; ++i) {{
{_indent(loads + list(body.element) + stores, 8)}
    }}"""
    return _functions(_pointers(param, grad, kinds), _hoisted(body), loop)


def _block_span(body: Body, param: str, grad: str, kinds: Sequence[Storage]) -> str:
    coded = [i for i, k in enumerate(kinds) if k.name in ("s8", "u8")]
    per_block, scales, encodes, after = [], [], [], []
    loads = [f"const mt in_param = {STORAGES[param].load.format(x='p[i]')};",
             f"const mt in_grad = {STORAGES[grad].load.format(x='g[i]')};"]
    stores = [f"p[i] = {STORAGES[param].store.format(v=body.param)};"]
    for i, kind in enumerate(kinds):
        if i in coded:
            per_block += [f"const float unit{i} = scale{i}[b] * {UNIT[kind.name]};",
                          f"uint32_t top{i} = 0;"]
            loads.append(f"const mt in_{i} = (mt)decode_{kind.name}(s{i}[i], unit{i});")
            stores += [f"const float new{i} = (float)({body.states[i]});",
                       f"buffer{i}[j] = new{i};",
                       f"top{i} = magnitude_bits(new{i}) > top{i} ? magnitude_bits(new{i})"
                       f" : top{i};"]
            scales += [f"const float new_scale{i} = bits_float(top{i});",
                       f"const float inverse{i} = 1.0f / (new_scale{i} > 0.0f ? "
                       f"new_scale{i} : 1.0f);"]
            encodes.append(f"s{i}[base + j] = encode_{kind.name}(buffer{i}[j], inverse{i});")
            after.append(f"scale{i}[b] = new_scale{i};")
        else:
            loads.append(f"const mt in_{i} = {kind.load.format(x=f's{i}[i]')};")
            stores.append(f"s{i}[i] = {kind.store.format(v=body.states[i])};")
            if kind.blocked:  # raw8: the scale read and written back, as a codec would
                after.append(f"scale{i}[b] = scale{i}[b] * job->one;")
    encode = scales + (["for (int64_t j = 0; j < len; ++j) {", *_lines(encodes, 4), "}"]
                       if encodes else []) + after
    buffers = [f"float buffer{i}[BLOCK] __attribute__((aligned(64)));" for i in coded]
    loop = f"""    for (int64_t base = lo; base < hi; base += BLOCK) {{
        const int64_t b = base / BLOCK;
        const int64_t len = hi - base < BLOCK ? hi - base : BLOCK;
{_indent(per_block, 8)}
        for (int64_t j = 0; j < len; ++j) {{
            const int64_t i = base + j;
{_indent(loads + list(body.element) + stores, 12)}
        }}
{_indent(encode, 8)}
    }}"""
    return _functions(_pointers(param, grad, kinds), _hoisted(body) + buffers, loop)


def _lines(lines: Sequence[str], spaces: int) -> list[str]:
    return [" " * spaces + line for line in lines]


_PREAMBLE = """/* optimlab generated kernel: {title} */
#include <math.h>
#include <stdint.h>
#include <string.h>

/* OpenMP's two queries, declared here rather than from omp.h: any compiler's -fopenmp
   will do, and the runtime linked is torch's (build.py) */
int omp_get_thread_num(void);
int omp_get_num_threads(void);

typedef {mt} mt;
#define SQRT sqrt{suffix}
#define FABS fabs{suffix}
#define EXP exp{suffix}
#define LOG log{suffix}
#define POW pow{suffix}
#define BLOCK {block}
#define ALIGN {align}
#define ROLES {roles}
#define SERIAL_BELOW {serial}
#define ROLE(r) (job->ptrs[(r) * job->tensors + t])

struct job {{
    int64_t tensors;
    void *const *ptrs;
    const int64_t *offsets;
    float one;
    mt hoisted[{hoisted}];
}};

/* the last call's team size and each thread's element count, for the tests of thread use */
#define MAX_TEAM 1024
int optimlab_last_team = 0;
int64_t optimlab_team_elements[MAX_TEAM];
"""

_DRIVER = r"""
/* the tensor holding element `at` of the concatenation: the last t with offsets[t] <= at */
static int64_t tensor_at(const struct job *job, int64_t at)
{
    int64_t lo = 0, hi = job->tensors;
    while (hi - lo > 1) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (job->offsets[mid] <= at) lo = mid; else hi = mid;
    }
    return lo;
}

/* where part `part` of `parts` starts: an even share, moved back to a multiple of ALIGN
   within its tensor */
static int64_t cut(const struct job *job, int64_t part, int64_t parts)
{
    const int64_t total = job->offsets[job->tensors];
    if (part >= parts) return total;
    const int64_t at = (int64_t)((__int128)total * part / parts);
    const int64_t t = tensor_at(job, at);
    return job->offsets[t] + (at - job->offsets[t]) / ALIGN * ALIGN;
}

static void run_part(const struct job *job, int64_t part, int64_t parts)
{
    const int64_t begin = cut(job, part, parts), end = cut(job, part + 1, parts);
    if (part < MAX_TEAM) optimlab_team_elements[part] = end - begin;
    if (begin >= end) return;
    for (int64_t t = tensor_at(job, begin); t < job->tensors && job->offsets[t] < end; ++t) {
        const int64_t lo = begin > job->offsets[t] ? begin : job->offsets[t];
        const int64_t hi = end < job->offsets[t + 1] ? end : job->offsets[t + 1];
        if (lo < hi) span(job, t, lo - job->offsets[t], hi - job->offsets[t]);
    }
}

int optimlab_step(int64_t tensors, void *const *ptrs, const int64_t *offsets,
                  const double *numbers, int threads)
{
    volatile float one = 1.0f;
    struct job job_, *job = &job_;
    job->tensors = tensors;
    job->ptrs = ptrs;
    job->offsets = offsets;
    job->one = one;
    mt *hoisted = job->hoisted;
    (void)numbers;
    (void)hoisted;
{prologue}
    if (tensors <= 0) return 0;
    if (threads > 1 && offsets[tensors] >= SERIAL_BELOW) {
        #pragma omp parallel num_threads(threads)
        {
            const int parts = omp_get_num_threads();
            run_part(job, omp_get_thread_num(), parts);
            if (omp_get_thread_num() == 0) optimlab_last_team = parts;
        }
    } else {
        run_part(job, 0, 1);
        optimlab_last_team = 1;
    }
    return 0;
}
"""
