//! Lim–Lee comb tables and the comb loop that computes u₁·G + u₂·Q from them, for any curve
//! representation implementing [`CombCurve`].
//!
//! A scalar of 8·`C` bits is read as 8 rows of `C` bits (row j holds bits C·j .. C·(j + 1)). A point P's
//! table holds, for every non-empty set b of rows, Σ 2^(C·j)·P over the rows j in b: 255 affine points.
//! Column c of a scalar (bit c of every row) names one entry, so k·P is `C` − 1 doublings and at most `C`
//! additions, and with a table for G and one for Q, u₁·G + u₂·Q shares the doublings: `C` − 1 doublings
//! and at most 2·`C` mixed additions.

/// The point arithmetic the comb needs: an accumulator `Point` and the affine `Entry` of a table.
pub(super) trait CombCurve {
    type Point: Copy;
    type Entry;
    fn identity() -> Self::Point;
    fn double(point: &Self::Point) -> Self::Point;
    fn add(point: &Self::Point, entry: &Self::Entry) -> Self::Point;
    fn from_entry(entry: &Self::Entry) -> Self::Point;
    /// The affine forms of `points`, `None` if one is the identity.
    fn to_entries(points: &[Self::Point]) -> Option<Vec<Self::Entry>>;
}

/// The comb table of `point` for rows of `row_bits` bits; `None` if an entry would be the identity,
/// which for a point of prime order n > 2^(7·row_bits + 1) cannot happen (every entry is k·P with
/// 0 < k < n).
pub(super) fn table<C: CombCurve>(point: &C::Entry, row_bits: usize) -> Option<Vec<C::Entry>> {
    // rows[j] = 2^(row_bits·j)·P, made affine at once for the mixed additions below.
    let mut rows = Vec::with_capacity(8);
    let mut row = C::from_entry(point);
    for j in 0..8 {
        rows.push(row);
        if j < 7 {
            for _ in 0..row_bits {
                row = C::double(&row);
            }
        }
    }
    let rows = C::to_entries(&rows)?;
    // sums[b − 1] = Σ rows[j] for the bits j of b: the sum without b's top bit, plus that row.
    let mut sums: Vec<C::Point> = Vec::with_capacity(255);
    for b in 1..256usize {
        let top = b.ilog2() as usize;
        let rest = match (b ^ (1 << top)).checked_sub(1) {
            None => C::identity(),
            Some(index) => *sums.get(index)?,
        };
        sums.push(C::add(&rest, rows.get(top)?));
    }
    C::to_entries(&sums)
}

/// The table index of every column of the big-endian scalar `scalar` (8·`COLUMNS` bits at most):
/// `columns[c]` has bit j set when bit `COLUMNS`·j + c of the scalar is; 0 is the empty column.
pub(super) fn columns<const COLUMNS: usize>(scalar: &[u8]) -> [u8; COLUMNS] {
    let mut columns = [0u8; COLUMNS];
    for (byte_index, byte) in scalar.iter().rev().enumerate() {
        for bit in 0..8 {
            if (byte >> bit) & 1 == 0 {
                continue;
            }
            let position = byte_index * 8 + bit;
            let (row, column) = (position / COLUMNS, position % COLUMNS);
            if let Some(slot) = columns.get_mut(column) {
                *slot |= 1u8.checked_shl(row as u32).unwrap_or(0);
            }
        }
    }
    columns
}

/// u₁·G + u₂·Q from the tables of G and Q and the columns of u₁ and u₂.
pub(super) fn linear_combination<C: CombCurve, const COLUMNS: usize>(
    g_table: &[C::Entry],
    u1: &[u8; COLUMNS],
    q_table: &[C::Entry],
    u2: &[u8; COLUMNS],
) -> C::Point {
    let mut sum = C::identity();
    for (&g_column, &q_column) in u1.iter().zip(u2).rev() {
        sum = C::double(&sum);
        for (table, column) in [(g_table, g_column), (q_table, q_column)] {
            if let Some(entry) = usize::from(column)
                .checked_sub(1)
                .and_then(|i| table.get(i))
            {
                sum = C::add(&sum, entry);
            }
        }
    }
    sum
}
