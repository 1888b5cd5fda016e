"""C helpers the loop templates share: 16-bit float conversions and the 8-bit codec.

Every helper is branch-free integer and float arithmetic that gcc vectorises with 256-bit
accesses. The 16-bit conversions are torch's own (c10/util/BFloat16.h and
c10/util/Half.h: round to nearest even; NaN to 0x7FC0 for bf16); a wider value is
rounded to float first, as torch does (c10::BFloat16 and c10::Half are built from a
float). The 8-bit helpers are codecs.Blockwise8bit's arithmetic, operation for
operation:

    decode, signed:        x = (c·|c|) · (s · fl(1/127²))
    decode, non-negative:  x = ((c·c)·(c·c)) · (s · fl(1/255⁴))
    encode, signed:        c = sign(u) · rint(127 · √|u|),  u = x · fl(1 / s)
    encode, non-negative:  c = rint(255 · √√u)

where s is the block's largest magnitude (1 in place of a scale of 0). The largest
magnitude is tracked on the float's bits: for x >= 0 the IEEE pattern orders as an
unsigned integer (NaN above +Inf, so a NaN propagates into the scale as torch.amax
propagates it), and the integer max vectorises where a float max would not without
-ffast-math. The non-negative codec's amax(x) equals amax(|x|) because its moments are
>= 0 (squares, their averages and maxima).
"""

HELPERS = r"""
static inline float bits_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t float_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static inline float bf16_load(uint16_t h) { return bits_float((uint32_t)h << 16); }
static inline uint16_t bf16_store(float f)
{
    const uint32_t u = float_bits(f);
    const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    return f != f ? (uint16_t)0x7FC0u : (uint16_t)rounded;
}

static inline float f16_load(uint16_t h)
{
    const uint32_t w = (uint32_t)h << 16;
    const uint32_t sign = w & 0x80000000u;
    const uint32_t two_w = w + w;
    const float normalized = bits_float((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
    const float denormalized = bits_float((two_w >> 17) | (126u << 23)) - 0.5f;
    const uint32_t magnitude = two_w < (1u << 27) ? float_bits(denormalized)
                                                   : float_bits(normalized);
    return bits_float(sign | magnitude);
}
static inline uint16_t f16_store(float f)
{
    float base = (fabsf(f) * 0x1.0p+112f) * 0x1.0p-110f;
    const uint32_t w = float_bits(f);
    const uint32_t shl1_w = w + w;
    const uint32_t sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xFF000000u;
    bias = bias < 0x71000000u ? 0x71000000u : bias;
    base = bits_float((bias >> 1) + 0x07800000u) + base;
    const uint32_t bits = float_bits(base);
    const uint32_t nonsign = ((bits >> 13) & 0x00007C00u) + (bits & 0x00000FFFu);
    return (uint16_t)((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

static inline float decode_s8(int8_t code, float unit)
{
    const float c = (float)code;
    return (c * fabsf(c)) * unit;
}
static inline float decode_u8(uint8_t code, float unit)
{
    const float c = (float)code;
    const float c2 = c * c;
    return (c2 * c2) * unit;
}
static inline int8_t encode_s8(float x, float inverse)
{
    const float u = x * inverse;
    const float c = __builtin_rintf(127.0f * sqrtf(fabsf(u)));
    return (int8_t)(int32_t)copysignf(c, u);
}
static inline uint8_t encode_u8(float x, float inverse)
{
    const float u = x * inverse;
    return (uint8_t)(int32_t)__builtin_rintf(255.0f * sqrtf(sqrtf(u)));
}
static inline uint32_t magnitude_bits(float x) { return float_bits(x) & 0x7FFFFFFFu; }
"""

#: the per-block decoding unit fl(s · fl(1/127²)) and fl(s · fl(1/255⁴)), as codecs.py
UNIT = {"s8": "(float)(1.0 / 16129.0)", "u8": "(float)(1.0 / 4228250625.0)"}
