//! Inner-product kernels: a scalar reference and SIMD versions chosen at run time.
//!
//! Vectors are L2-normalised, so inner product is cosine similarity: greater score =
//! closer. The binary is built for baseline x86-64; AVX2 + FMA and AVX-512 kernels are
//! compiled with `#[target_feature]` and picked once, by CPU detection, so one build
//! runs at full speed on every machine we have. Every SIMD kernel is tested equal
//! (within rounding) to the scalar one on odd dimensions.

use std::sync::OnceLock;

/// The reference: plain, obviously correct.
pub fn dot_scalar(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must support AVX2 and FMA; `a` and `b` must have equal length.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        // Four accumulators hide the FMA latency.
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY: every load reads 8 floats at an offset < n - 7.
        unsafe {
            while i + 32 <= n {
                for (j, a) in acc.iter_mut().enumerate() {
                    let x = _mm256_loadu_ps(pa.add(i + 8 * j));
                    let y = _mm256_loadu_ps(pb.add(i + 8 * j));
                    *a = _mm256_fmadd_ps(x, y, *a);
                }
                i += 32;
            }
            while i + 8 <= n {
                acc[0] = _mm256_fmadd_ps(
                    _mm256_loadu_ps(pa.add(i)),
                    _mm256_loadu_ps(pb.add(i)),
                    acc[0],
                );
                i += 8;
            }
            let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
            let hi = _mm256_extractf128_ps(s, 1);
            let lo = _mm256_castps256_ps128(s);
            let q = _mm_add_ps(hi, lo);
            let q = _mm_add_ps(q, _mm_movehl_ps(q, q));
            let q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));
            let mut total = _mm_cvtss_f32(q);
            while i < n {
                total += *pa.add(i) * *pb.add(i);
                i += 1;
            }
            total
        }
    }

    /// # Safety
    /// The CPU must support AVX-512F; `a` and `b` must have equal length.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm512_setzero_ps(); 2];
        let mut i = 0;
        // SAFETY: full loads read 16 floats at an offset < n - 15; the tail is masked.
        unsafe {
            while i + 32 <= n {
                acc[0] = _mm512_fmadd_ps(
                    _mm512_loadu_ps(pa.add(i)),
                    _mm512_loadu_ps(pb.add(i)),
                    acc[0],
                );
                acc[1] = _mm512_fmadd_ps(
                    _mm512_loadu_ps(pa.add(i + 16)),
                    _mm512_loadu_ps(pb.add(i + 16)),
                    acc[1],
                );
                i += 32;
            }
            while i + 16 <= n {
                acc[0] = _mm512_fmadd_ps(
                    _mm512_loadu_ps(pa.add(i)),
                    _mm512_loadu_ps(pb.add(i)),
                    acc[0],
                );
                i += 16;
            }
            if i < n {
                let mask: __mmask16 = (1u32 << (n - i)).wrapping_sub(1) as __mmask16;
                let x = _mm512_maskz_loadu_ps(mask, pa.add(i));
                let y = _mm512_maskz_loadu_ps(mask, pb.add(i));
                acc[0] = _mm512_fmadd_ps(x, y, acc[0]);
            }
            _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1]))
        }
    }
}

/// The kernels this CPU runs, chosen once.
#[derive(Debug, Clone, Copy)]
pub struct Kernels {
    pub name: &'static str,
    dot: unsafe fn(&[f32], &[f32]) -> f32,
}

unsafe fn dot_scalar_unsafe(a: &[f32], b: &[f32]) -> f32 {
    dot_scalar(a, b)
}

impl Kernels {
    /// Inner product of two equal-length vectors.
    #[inline]
    pub fn dot(&self, a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len(), "dot of vectors of different lengths");
        // SAFETY: `detect` only installs a kernel whose CPU features are present, and
        // the lengths are equal.
        unsafe { (self.dot)(a, b) }
    }

    pub const SCALAR: Kernels = Kernels {
        name: "scalar",
        dot: dot_scalar_unsafe,
    };

    /// Every kernel set this CPU can run, best last (for tests and benches).
    pub fn available() -> Vec<Kernels> {
        #[allow(unused_mut)]
        let mut v = vec![Kernels::SCALAR];
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                v.push(Kernels {
                    name: "avx2+fma",
                    dot: x86::dot_avx2,
                });
            }
            if is_x86_feature_detected!("avx512f") {
                v.push(Kernels {
                    name: "avx512f",
                    dot: x86::dot_avx512,
                });
            }
        }
        v
    }
}

/// The best kernels for this CPU.
pub fn kernels() -> &'static Kernels {
    static BEST: OnceLock<Kernels> = OnceLock::new();
    BEST.get_or_init(|| *Kernels::available().last().unwrap_or(&Kernels::SCALAR))
}

/// Scales `v` to unit length in place; a zero vector stays zero.
pub fn normalise(v: &mut [f32]) {
    let norm = kernels().dot(v, v).sqrt();
    if norm > 0.0 && norm.is_finite() {
        let inv = 1.0 / norm;
        v.iter_mut().for_each(|x| *x *= inv);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    #[test]
    fn simd_kernels_equal_the_scalar_reference_on_odd_dimensions() {
        let kernels = Kernels::available();
        for dim in [0, 1, 3, 7, 8, 15, 16, 17, 31, 33, 100, 383, 384, 385, 1023] {
            let (a, b) = (vector(dim, 1), vector(dim, 7));
            let want = dot_scalar(&a, &b);
            for k in &kernels {
                let got = k.dot(&a, &b);
                let tol = 1e-4 * (1.0 + want.abs()) * (dim as f32).sqrt().max(1.0);
                assert!(
                    (got - want).abs() <= tol,
                    "{} dim {dim}: {got} vs {want}",
                    k.name
                );
            }
        }
    }

    #[test]
    fn normalised_vectors_have_unit_length_and_zero_stays_zero() {
        let mut v = vector(385, 3);
        normalise(&mut v);
        assert!((dot_scalar(&v, &v) - 1.0).abs() < 1e-5);
        let mut z = vec![0.0; 5];
        normalise(&mut z);
        assert_eq!(z, vec![0.0; 5]);
    }
}
