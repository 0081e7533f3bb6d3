//! A row-major f32 matrix in one contiguous, 64-byte-aligned allocation.
//!
//! Alignment lets SIMD loads of a row's start never straddle a cache line, and keeps
//! packing in the GEMM cheap. Rows are stored back to back with no padding, so the
//! whole matrix is one `&[f32]` a BLAS-style kernel can stride over.

use std::fmt;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; 16]);

/// `rows × dim` f32 values, row-major, contiguous, aligned to 64 bytes.
#[derive(Clone)]
pub struct Matrix {
    rows: usize,
    dim: usize,
    storage: Vec<Line>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatrixError {
    #[error("wrong dimension: expected {expected}, got {got}")]
    WrongDimension { expected: usize, got: usize },
    #[error("{len} values do not fill rows of {dim}")]
    Ragged { len: usize, dim: usize },
}

impl Matrix {
    pub fn zeros(rows: usize, dim: usize) -> Self {
        let lines = (rows * dim).div_ceil(16);
        Matrix {
            rows,
            dim,
            storage: vec![Line([0.0; 16]); lines],
        }
    }

    /// Builds a matrix from row-major values.
    pub fn from_vec(dim: usize, values: &[f32]) -> Result<Self, MatrixError> {
        if dim == 0 || !values.len().is_multiple_of(dim) {
            return Err(MatrixError::Ragged {
                len: values.len(),
                dim,
            });
        }
        let mut m = Matrix::zeros(values.len() / dim, dim);
        m.as_mut_slice().copy_from_slice(values);
        Ok(m)
    }

    /// Builds a matrix from rows, each of length `dim`.
    pub fn from_rows<R: AsRef<[f32]>>(dim: usize, rows: &[R]) -> Result<Self, MatrixError> {
        let mut m = Matrix::zeros(rows.len(), dim);
        for (i, r) in rows.iter().enumerate() {
            let r = r.as_ref();
            if r.len() != dim {
                return Err(MatrixError::WrongDimension {
                    expected: dim,
                    got: r.len(),
                });
            }
            m.row_mut(i).copy_from_slice(r);
        }
        Ok(m)
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    pub fn as_slice(&self) -> &[f32] {
        // SAFETY: `Line` is `repr(C)` over `[f32; 16]`, so the storage is a contiguous
        // run of f32 at least `rows * dim` long.
        unsafe {
            std::slice::from_raw_parts(self.storage.as_ptr().cast::<f32>(), self.rows * self.dim)
        }
    }

    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        // SAFETY: as in `as_slice`, and `&mut self` makes the borrow unique.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.storage.as_mut_ptr().cast::<f32>(),
                self.rows * self.dim,
            )
        }
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.as_slice()[i * self.dim..(i + 1) * self.dim]
    }

    pub fn row_mut(&mut self, i: usize) -> &mut [f32] {
        let dim = self.dim;
        &mut self.as_mut_slice()[i * dim..(i + 1) * dim]
    }

    /// Scales every row to unit length (zero rows stay zero), so inner product is cosine.
    pub fn normalise_rows(&mut self) {
        for i in 0..self.rows {
            super::metric::normalise(self.row_mut(i));
        }
    }

    /// A copy of rows `range`.
    pub fn slice_rows(&self, range: std::ops::Range<usize>) -> Matrix {
        let mut m = Matrix::zeros(range.len(), self.dim);
        m.as_mut_slice()
            .copy_from_slice(&self.as_slice()[range.start * self.dim..range.end * self.dim]);
        m
    }
}

impl fmt::Debug for Matrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Matrix({}×{})", self.rows, self.dim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_contiguous_and_aligned() {
        let m = Matrix::from_vec(3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        assert_eq!(m.rows(), 2);
        assert_eq!(m.row(1), &[4.0, 5.0, 6.0]);
        assert_eq!(m.as_slice().as_ptr() as usize % 64, 0);
        assert!(Matrix::from_vec(4, &[1.0; 6]).is_err());
        assert!(matches!(
            Matrix::from_rows(3, &[vec![1.0, 2.0]]),
            Err(MatrixError::WrongDimension {
                expected: 3,
                got: 2
            })
        ));
    }
}
