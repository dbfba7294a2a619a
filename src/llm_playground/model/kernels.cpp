// Quantized CPU kernels of the native backend: int8 and int4 group-quantized matmuls and a whole-model
// forward pass (prefill and decode) over a float32 KV cache, in one call per step.
//
// Why C++: at 135M parameters a decode step is ~120 matmuls and ~600 small torch ops; the ops between
// the matmuls (RMSNorm, RoPE, cache writes, attention over one query) cost as much as the matmuls, and
// PyTorch's own int8/int4 CPU kernels are 10-30x slower than its float32 GEMV on AVX2 CPUs.
//
// The block math is the one llama.cpp (ggml) uses for Q8_0 and Q4_1: weights in groups of 32 with a float
// scale (and a float minimum for int4); the activation vector is quantized to int8 per group of 32 once per
// matmul, so each group's dot product is integer (_mm256_maddubs_epi16 + _mm256_madd_epi16) and one float
// FMA per group applies both scales.
//
//   int8 group:  w_i = dw * qw_i + mw (qw in [-120, 120], mw the group's midpoint)     x_i ~ dx * qx_i
//   int4 group:  w_i = dw * qw_i + mw (qw in [0, 15], mw the group's minimum)
//                sum_i w_i x_i = dw * dx * sum_i qw_i qx_i + mw * (dx * sum_i qx_i)
// 240 int8 steps rather than 254: a group with 16 levels (a dequantized Q4_1 group, as in the bundled GGUF)
// lands exactly on the int8 grid (q = 16 * q4 - 120), so int8 reproduces such weights without loss.
//
// int4 packing of a group (16 bytes): byte j holds element j in its low nibble and element j + 16 in its
// high nibble, so one 128-bit load and a shift give the 32 elements in order.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define LLMP_AVX2 1
#endif

namespace {

constexpr int64_t QK = 32;

// A quantized matrix (out, in): int8 data (out, in) or uint8 packed int4 data (out, in / 2), float scales
// (out, in / 32) and, for int4, float minimums (out, in / 32).
struct QMat {
  torch::Tensor data, scale, min;
  int64_t out = 0, in = 0;
  bool int4 = false;
};

QMat make_qmat(const torch::Tensor& data, const torch::Tensor& scale, const torch::Tensor& min) {
  QMat m;
  m.data = data.contiguous();
  m.scale = scale.contiguous().to(torch::kFloat32);
  m.int4 = data.scalar_type() == torch::kUInt8;
  m.out = data.size(0);
  m.in = m.int4 ? data.size(1) * 2 : data.size(1);
  TORCH_CHECK(m.in % QK == 0, "quantized matrices need an input size divisible by 32");
  TORCH_CHECK(scale.size(0) == m.out && scale.size(1) == m.in / QK, "scale shape does not match the data");
  TORCH_CHECK(m.int4 || data.scalar_type() == torch::kInt8, "quantized data must be int8 or uint8 (packed int4)");
  TORCH_CHECK(min.defined() && min.numel() == scale.numel(), "quantized matrices need group offsets");
  m.min = min.contiguous().to(torch::kFloat32);
  return m;
}

// One row of activations quantized per group of 32: q (n), d (n / 32), s = d * sum(q) (n / 32).
struct QRow {
  std::vector<int8_t> q;
  std::vector<float> d, s;
};

// Activations as integers per block of QK (round half to even), with each block's scale `d` and
// scale × sum `s`: int8 (127 levels) for int4 weights, int16 (32767) for int8 weights (int8 activations cost
// greedy agreement there).
template <typename T, int LEVELS>
void quantize_activations(const float* x, int64_t n, T* q, float* d, float* s) {
  for (int64_t b = 0; b < n / QK; ++b) {
    const float* xb = x + b * QK;
    float amax = 0.f;
    for (int i = 0; i < QK; ++i) amax = std::max(amax, std::fabs(xb[i]));
    const float scale = amax / static_cast<float>(LEVELS);
    const float inv = scale > 0.f ? 1.f / scale : 0.f;
    int sum = 0;
    for (int i = 0; i < QK; ++i) {
      const int v = static_cast<int>(std::nearbyint(xb[i] * inv));
      q[b * QK + i] = static_cast<T>(v);
      sum += v;
    }
    d[b] = scale;
    s[b] = scale * static_cast<float>(sum);
  }
}

#ifdef LLMP_AVX2
inline float hsum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}

// 8 int32 partial sums of a group's integer dot product, as floats. a: unsigned bytes, b: signed bytes.
inline __m256 dot_us(__m256i a, __m256i b) {
  const __m256i pairs = _mm256_maddubs_epi16(a, b);
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}
#endif

// dot(row r of W, quantized x) for int8 weights and int16 activations.
inline float dot_q8(const int8_t* w, const float* dw, const float* mw, const int16_t* x, const float* dx,
                    const float* sx, int64_t groups) {
  float offset = 0.f;
  for (int64_t b = 0; b < groups; ++b) offset += mw[b] * sx[b];
#ifdef LLMP_AVX2
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  auto group = [&](int64_t g) {
    const __m128i* wp = reinterpret_cast<const __m128i*>(w + g * QK);
    const __m256i* xp = reinterpret_cast<const __m256i*>(x + g * QK);
    const __m256i lo = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128(wp)), _mm256_loadu_si256(xp));
    const __m256i hi = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128(wp + 1)), _mm256_loadu_si256(xp + 1));
    return _mm256_cvtepi32_ps(_mm256_add_epi32(lo, hi));
  };
  int64_t b = 0;
  for (; b + 1 < groups; b += 2) {
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(dw[b] * dx[b]), group(b), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(dw[b + 1] * dx[b + 1]), group(b + 1), acc1);
  }
  for (; b < groups; ++b) acc0 = _mm256_fmadd_ps(_mm256_set1_ps(dw[b] * dx[b]), group(b), acc0);
  return hsum(_mm256_add_ps(acc0, acc1)) + offset;
#else
  float total = 0.f;
  for (int64_t b = 0; b < groups; ++b) {
    int sum = 0;
    for (int i = 0; i < QK; ++i) sum += int(w[b * QK + i]) * int(x[b * QK + i]);
    total += dw[b] * dx[b] * float(sum);
  }
  return total + offset;
#endif
}

// dot(row r of W, quantized x) for packed int4 weights with minimums.
inline float dot_q4(const uint8_t* w, const float* dw, const float* mw, const int8_t* x, const float* dx,
                    const float* sx, int64_t groups) {
  float offset = 0.f;
  for (int64_t b = 0; b < groups; ++b) offset += mw[b] * sx[b];
#ifdef LLMP_AVX2
  const __m256i low = _mm256_set1_epi8(0x0F);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t b = 0;
  auto group = [&](int64_t g) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + g * QK / 2));
    const __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), low);
    const __m256i vx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + g * QK));
    return dot_us(nib, vx);
  };
  for (; b + 1 < groups; b += 2) {
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(dw[b] * dx[b]), group(b), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(dw[b + 1] * dx[b + 1]), group(b + 1), acc1);
  }
  for (; b < groups; ++b) acc0 = _mm256_fmadd_ps(_mm256_set1_ps(dw[b] * dx[b]), group(b), acc0);
  return hsum(_mm256_add_ps(acc0, acc1)) + offset;
#else
  float total = 0.f;
  for (int64_t b = 0; b < groups; ++b) {
    int sum = 0;
    const uint8_t* g = w + b * QK / 2;
    for (int i = 0; i < QK / 2; ++i) {
      sum += int(g[i] & 0x0F) * int(x[b * QK + i]) + int(g[i] >> 4) * int(x[b * QK + i + QK / 2]);
    }
    total += dw[b] * dx[b] * float(sum);
  }
  return total + offset;
#endif
}

void dequantize_row(const QMat& m, int64_t r, float* out) {
  const int64_t groups = m.in / QK;
  const float* dw = m.scale.data_ptr<float>() + r * groups;
  const float* mw = m.min.data_ptr<float>() + r * groups;
  if (m.int4) {
    const uint8_t* w = m.data.data_ptr<uint8_t>() + r * m.in / 2;
    for (int64_t b = 0; b < groups; ++b) {
      for (int i = 0; i < QK / 2; ++i) {
        const uint8_t byte = w[b * QK / 2 + i];
        out[b * QK + i] = dw[b] * float(byte & 0x0F) + mw[b];
        out[b * QK + i + QK / 2] = dw[b] * float(byte >> 4) + mw[b];
      }
    }
  } else {
    const int8_t* w = m.data.data_ptr<int8_t>() + r * m.in;
    for (int64_t b = 0; b < groups; ++b) {
      for (int i = 0; i < QK; ++i) out[b * QK + i] = dw[b] * float(w[b * QK + i]) + mw[b];
    }
  }
}

// y (rows, out) = x (rows, in) @ W.T [+ bias]; x float32, contiguous. `accumulate` adds into y instead.
// Prompts (many rows): float32 GEMMs over tiles of W dequantized into a cache-sized buffer. The integer dot
// products are bound by instruction count there, while sgemm runs at the FMA peak; a tile's dequantization
// is paid once for all rows, so prefill is as fast as float32's and its activations are never rounded.
constexpr int64_t GEMM_ROWS = 8;

void qmatmul_tiled(const QMat& m, const float* x, int64_t rows, float* y, const float* bias, bool accumulate) {
  const int64_t tile = std::max<int64_t>(16, 65536 / m.in);
  std::vector<float> buffer(tile * m.in);
  const torch::Tensor xt = torch::from_blob(const_cast<float*>(x), {rows, m.in}, torch::kFloat32);
  for (int64_t r0 = 0; r0 < m.out; r0 += tile) {
    const int64_t n = std::min(tile, m.out - r0);
    for (int64_t r = 0; r < n; ++r) dequantize_row(m, r0 + r, buffer.data() + r * m.in);
    const torch::Tensor wt = torch::from_blob(buffer.data(), {n, m.in}, torch::kFloat32);
    const torch::Tensor yt = torch::mm(xt, wt.t()).contiguous();  // (rows, n)
    const float* ys = yt.data_ptr<float>();
    for (int64_t t = 0; t < rows; ++t) {
      float* out = y + t * m.out + r0;
      const float* src = ys + t * n;
      for (int64_t j = 0; j < n; ++j) {
        const float v = src[j] + (bias ? bias[r0 + j] : 0.f);
        out[j] = accumulate ? out[j] + v : v;
      }
    }
  }
}

void qmatmul_into(const QMat& m, const float* x, int64_t rows, float* y, const float* bias, bool accumulate) {
  if (rows >= GEMM_ROWS) return qmatmul_tiled(m, x, rows, y, bias, accumulate);
  const int64_t groups = m.in / QK;
  std::vector<int8_t> q(m.int4 ? rows * m.in : 0);
  std::vector<int16_t> q16(m.int4 ? 0 : rows * m.in);
  std::vector<float> d(rows * groups), s(rows * groups);
  for (int64_t t = 0; t < rows; ++t) {
    if (m.int4) quantize_activations<int8_t, 127>(x + t * m.in, m.in, q.data() + t * m.in, d.data() + t * groups, s.data() + t * groups);
    else quantize_activations<int16_t, 32767>(x + t * m.in, m.in, q16.data() + t * m.in, d.data() + t * groups, s.data() + t * groups);
  }
  const float* scale = m.scale.data_ptr<float>();
  const float* mins = m.min.data_ptr<float>();
  const int8_t* w8 = m.int4 ? nullptr : m.data.data_ptr<int8_t>();
  const uint8_t* w4 = m.int4 ? m.data.data_ptr<uint8_t>() : nullptr;
  // Rows of W are split between threads; each W row is read once and stays in L1 across the x rows.
  const int64_t grain = std::max<int64_t>(16, 4096 / std::max<int64_t>(rows, 1));
  at::parallel_for(0, m.out, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* dw = scale + r * groups;
      const float b = bias ? bias[r] : 0.f;
      for (int64_t t = 0; t < rows; ++t) {
        const float* xd = d.data() + t * groups;
        float v = m.int4 ? dot_q4(w4 + r * m.in / 2, dw, mins + r * groups, q.data() + t * m.in, xd,
                                  s.data() + t * groups, groups)
                         : dot_q8(w8 + r * m.in, dw, mins + r * groups, q16.data() + t * m.in, xd,
                                  s.data() + t * groups, groups);
        v += b;
        float* out = y + t * m.out + r;
        *out = accumulate ? *out + v : v;
      }
    }
  });
}

inline float dot_f32(const float* a, const float* b, int64_t n) {
#ifdef LLMP_AVX2
  if (n % 8 == 0) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    return hsum(acc);
  }
#endif
  float total = 0.f;
  for (int64_t i = 0; i < n; ++i) total += a[i] * b[i];
  return total;
}

inline void axpy(float w, const float* x, float* y, int64_t n) {
#ifdef LLMP_AVX2
  if (n % 8 == 0) {
    const __m256 vw = _mm256_set1_ps(w);
    for (int64_t i = 0; i < n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(vw, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i) y[i] += w * x[i];
}

void rms_norm(const float* x, const float* weight, float eps, int64_t n, float* out) {
  float ss = 0.f;
  for (int64_t i = 0; i < n; ++i) ss += x[i] * x[i];
  const float inv = 1.f / std::sqrt(ss / float(n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * inv * weight[i];
}

// Rotate-half RoPE (the Hugging Face layout) of one head in place; cos/sin rows of head_dim values.
void rope(float* v, const float* cos, const float* sin, int64_t dim) {
  const int64_t half = dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float a = v[i], b = v[i + half];
    v[i] = a * cos[i] - b * sin[i];
    v[i + half] = b * cos[i + half] + a * sin[i + half];
  }
}

struct Layer {
  torch::Tensor input_norm, post_norm, qkv_bias;
  QMat qkv, o, gate_up, down;
};

// The whole decoder over quantized weights: built once per model, called once per forward step.
class Engine {
 public:
  Engine(int64_t hidden, int64_t intermediate, int64_t heads, int64_t kv_heads, int64_t head_dim, double eps)
      : hidden_(hidden), inter_(intermediate), heads_(heads), kv_heads_(kv_heads), head_dim_(head_dim),
        eps_(float(eps)) {}

  void add_layer(torch::Tensor input_norm, torch::Tensor post_norm, std::vector<torch::Tensor> qkv,
                 torch::Tensor qkv_bias, std::vector<torch::Tensor> o, std::vector<torch::Tensor> gate_up,
                 std::vector<torch::Tensor> down) {
    Layer l;
    l.input_norm = input_norm.contiguous().to(torch::kFloat32);
    l.post_norm = post_norm.contiguous().to(torch::kFloat32);
    l.qkv_bias = qkv_bias.defined() && qkv_bias.numel() ? qkv_bias.contiguous().to(torch::kFloat32) : torch::Tensor();
    l.qkv = make(qkv);
    l.o = make(o);
    l.gate_up = make(gate_up);
    l.down = make(down);
    layers_.push_back(std::move(l));
  }

  void set_head(torch::Tensor norm, std::vector<torch::Tensor> head) {
    norm_ = norm.contiguous().to(torch::kFloat32);
    head_ = make(head);
  }

  // Logits (vocab) of the last position, or (tokens, vocab) of every one; x: (tokens, hidden) embeddings.
  // k_cache/v_cache: (layers, 1, kv_heads, capacity, head_dim) float32, positions [start, start + tokens)
  // are written; cos/sin: (>= start + tokens, head_dim).
  torch::Tensor forward(torch::Tensor x_in, torch::Tensor k_cache, torch::Tensor v_cache, int64_t start,
                        torch::Tensor cos, torch::Tensor sin, bool last_only) {
    TORCH_CHECK(x_in.dim() == 2 && x_in.size(1) == hidden_, "x must be (tokens, hidden)");
    TORCH_CHECK(k_cache.is_contiguous() && v_cache.is_contiguous() && k_cache.scalar_type() == torch::kFloat32,
                "the KV cache must be contiguous float32");
    // The scratch buffers are the engine's: one forward at a time (threads sharing a model take turns).
    std::lock_guard<std::mutex> guard(mutex_);
    const int64_t T = x_in.size(0), H = hidden_, D = head_dim_, end = start + T;
    const int64_t capacity = k_cache.size(3);
    TORCH_CHECK(end <= capacity && cos.size(0) >= end, "cache or RoPE table too short");
    const int64_t qsize = heads_ * D, kvsize = kv_heads_ * D, group = heads_ / kv_heads_;
    torch::Tensor x = x_in.to(torch::kFloat32).contiguous().clone();
    float* xs = x.data_ptr<float>();
    ensure(T);
    const float* cs = cos.contiguous().data_ptr<float>();
    const float* sn = sin.contiguous().data_ptr<float>();
    float* kc = k_cache.data_ptr<float>();
    float* vc = v_cache.data_ptr<float>();
    const float scale = 1.f / std::sqrt(float(D));
    for (size_t li = 0; li < layers_.size(); ++li) {
      const Layer& l = layers_[li];
      for (int64_t t = 0; t < T; ++t) rms_norm(xs + t * H, l.input_norm.data_ptr<float>(), eps_, H, h_.data() + t * H);
      qmatmul_into(l.qkv, h_.data(), T, qkv_.data(), l.qkv_bias.defined() ? l.qkv_bias.data_ptr<float>() : nullptr,
                   false);
      float* kl = kc + int64_t(li) * kv_heads_ * capacity * D;
      float* vl = vc + int64_t(li) * kv_heads_ * capacity * D;
      for (int64_t t = 0; t < T; ++t) {
        float* row = qkv_.data() + t * (qsize + 2 * kvsize);
        const float* c = cs + (start + t) * D;
        const float* s = sn + (start + t) * D;
        for (int64_t hd = 0; hd < heads_; ++hd) rope(row + hd * D, c, s, D);
        for (int64_t hd = 0; hd < kv_heads_; ++hd) {
          float* k = row + qsize + hd * D;
          rope(k, c, s, D);
          std::copy(k, k + D, kl + (hd * capacity + start + t) * D);
          const float* v = row + qsize + kvsize + hd * D;
          std::copy(v, v + D, vl + (hd * capacity + start + t) * D);
        }
      }
      // Causal attention, one (token, head) pair per task: softmax(q K^T / sqrt(D)) V over [0, start + t].
      at::parallel_for(0, T * heads_, T * heads_ > 8 ? 1 : T * heads_, [&](int64_t begin, int64_t stop) {
        std::vector<float> scores(end);
        for (int64_t task = begin; task < stop; ++task) {
          const int64_t t = task / heads_, hd = task % heads_, kvh = hd / group, n = start + t + 1;
          const float* q = qkv_.data() + t * (qsize + 2 * kvsize) + hd * D;
          const float* keys = kl + kvh * capacity * D;
          const float* values = vl + kvh * capacity * D;
          float best = -INFINITY;
          for (int64_t p = 0; p < n; ++p) {
            scores[p] = dot_f32(q, keys + p * D, D) * scale;
            best = std::max(best, scores[p]);
          }
          float total = 0.f;
          for (int64_t p = 0; p < n; ++p) total += (scores[p] = std::exp(scores[p] - best));
          float* out = attn_.data() + t * qsize + hd * D;
          std::fill(out, out + D, 0.f);
          for (int64_t p = 0; p < n; ++p) {
            axpy(scores[p] / total, values + p * D, out, D);
          }
        }
      });
      qmatmul_into(l.o, attn_.data(), T, xs, nullptr, true);  // x += attn @ Wo^T
      for (int64_t t = 0; t < T; ++t) rms_norm(xs + t * H, l.post_norm.data_ptr<float>(), eps_, H, h_.data() + t * H);
      qmatmul_into(l.gate_up, h_.data(), T, gu_.data(), nullptr, false);
      for (int64_t t = 0; t < T; ++t) {
        const float* g = gu_.data() + t * 2 * inter_;
        float* a = act_.data() + t * inter_;
        for (int64_t i = 0; i < inter_; ++i) a[i] = g[i] / (1.f + std::exp(-g[i])) * g[i + inter_];
      }
      qmatmul_into(l.down, act_.data(), T, xs, nullptr, true);  // x += silu(gate) * up @ Wdown^T
    }
    const int64_t first = last_only ? T - 1 : 0, rows = T - first;
    for (int64_t t = first; t < T; ++t) rms_norm(xs + t * H, norm_.data_ptr<float>(), eps_, H, h_.data() + (t - first) * H);
    torch::Tensor logits = torch::empty({rows, head_.out}, torch::kFloat32);
    qmatmul_into(head_, h_.data(), rows, logits.data_ptr<float>(), nullptr, false);
    return last_only ? logits[0] : logits;
  }

  // Rows `ids` of the (tied) head dequantized: the input embeddings, (len(ids), hidden).
  torch::Tensor embed(torch::Tensor ids) { return dequantize_rows(head_, ids); }

  static torch::Tensor dequantize_rows(const QMat& m, torch::Tensor ids) {
    ids = ids.to(torch::kLong).contiguous();
    torch::Tensor out = torch::empty({ids.numel(), m.in}, torch::kFloat32);
    const int64_t* id = ids.data_ptr<int64_t>();
    for (int64_t i = 0; i < ids.numel(); ++i) {
      TORCH_CHECK(id[i] >= 0 && id[i] < m.out, "token id out of range");
      dequantize_row(m, id[i], out.data_ptr<float>() + i * m.in);
    }
    return out;
  }

 private:
  static QMat make(const std::vector<torch::Tensor>& parts) {
    TORCH_CHECK(parts.size() == 3, "a quantized matrix is [data, scale, min]");
    return make_qmat(parts[0], parts[1], parts[2]);
  }

  void ensure(int64_t T) {
    const size_t qkv = size_t(T) * (heads_ + 2 * kv_heads_) * head_dim_;
    if (qkv_.size() < qkv) {
      qkv_.resize(qkv);
      h_.resize(size_t(T) * hidden_);
      attn_.resize(size_t(T) * heads_ * head_dim_);
      gu_.resize(size_t(T) * 2 * inter_);
      act_.resize(size_t(T) * inter_);
    }
  }

  int64_t hidden_, inter_, heads_, kv_heads_, head_dim_;
  float eps_;
  std::vector<Layer> layers_;
  torch::Tensor norm_;
  QMat head_;
  // Scratch reused across steps (grown for the longest prompt seen): no per-step allocations but logits.
  std::vector<float> h_, qkv_, attn_, gu_, act_;
  std::mutex mutex_;
};

// x (..., in) @ W.T [+ bias] for one quantized matrix: what the torch modules (explorers, batching) call.
torch::Tensor qlinear(torch::Tensor x, torch::Tensor data, torch::Tensor scale, torch::Tensor min,
                      c10::optional<torch::Tensor> bias) {
  const QMat m = make_qmat(data, scale, min);
  TORCH_CHECK(x.size(-1) == m.in, "input size does not match the quantized matrix");
  auto sizes = x.sizes().vec();
  torch::Tensor flat = x.reshape({-1, m.in}).to(torch::kFloat32).contiguous();
  torch::Tensor y = torch::empty({flat.size(0), m.out}, torch::kFloat32);
  torch::Tensor b = bias.has_value() && bias->defined() ? bias->to(torch::kFloat32).contiguous() : torch::Tensor();
  qmatmul_into(m, flat.data_ptr<float>(), flat.size(0), y.data_ptr<float>(), b.defined() ? b.data_ptr<float>() : nullptr,
               false);
  sizes.back() = m.out;
  return y.view(sizes);
}

torch::Tensor dequantize(torch::Tensor data, torch::Tensor scale, torch::Tensor min) {
  const QMat m = make_qmat(data, scale, min);
  return Engine::dequantize_rows(m, torch::arange(m.out, torch::kLong));
}

torch::Tensor dequantize_rows(torch::Tensor data, torch::Tensor scale, torch::Tensor min, torch::Tensor ids) {
  return Engine::dequantize_rows(make_qmat(data, scale, min), ids);
}

bool has_avx2() {
#ifdef LLMP_AVX2
  return true;
#else
  return false;
#endif
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("qlinear", &qlinear, "x @ W.T for a group-quantized W");
  m.def("dequantize", &dequantize, "a quantized matrix as float32");
  m.def("dequantize_rows", &dequantize_rows, "some rows of a quantized matrix as float32");
  m.def("has_avx2", &has_avx2, "whether the kernels were built with AVX2 + FMA");
  pybind11::class_<Engine>(m, "Engine")
      .def(pybind11::init<int64_t, int64_t, int64_t, int64_t, int64_t, double>())
      .def("add_layer", &Engine::add_layer)
      .def("set_head", &Engine::set_head)
      .def("embed", &Engine::embed)
      .def("forward", &Engine::forward, pybind11::call_guard<pybind11::gil_scoped_release>());
}
