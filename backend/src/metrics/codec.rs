//! How samples are kept: one row per sample of little-endian `f32` values (NaN for none) in
//! the order of the device's names list, and per hour one row of `count, sum, min, max` per
//! value. Store-independent, so every store keeps them the same way.

/// Bytes per value of a raw row.
const RAW: usize = 4;
/// Bytes per value of an hourly row: count (u32), sum (f64), min and max (f32).
const AGG: usize = 20;

/// A raw row of `values`.
pub fn encode(values: &[Option<f64>]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|v| v.map_or(f32::NAN, |v| v as f32).to_le_bytes())
        .collect()
}

/// The values of a raw row.
pub fn decode(row: &[u8]) -> Vec<Option<f32>> {
    row.chunks_exact(RAW)
        .map(|c| {
            let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            (!v.is_nan()).then_some(v)
        })
        .collect()
}

/// One value's hour so far.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Aggregate {
    pub count: u32,
    pub sum: f64,
    pub min: f32,
    pub max: f32,
}

impl Aggregate {
    pub fn mean(&self) -> Option<f32> {
        (self.count > 0).then(|| (self.sum / f64::from(self.count)) as f32)
    }
}

/// The aggregates of an hourly row (an empty row is a fresh hour).
pub fn decode_hour(row: &[u8]) -> Vec<Aggregate> {
    row.chunks_exact(AGG)
        .map(|c| Aggregate {
            count: u32::from_le_bytes(c[0..4].try_into().expect("4 bytes")),
            sum: f64::from_le_bytes(c[4..12].try_into().expect("8 bytes")),
            min: f32::from_le_bytes(c[12..16].try_into().expect("4 bytes")),
            max: f32::from_le_bytes(c[16..20].try_into().expect("4 bytes")),
        })
        .collect()
}

/// The hourly row `row` with `values` (a sample in the same names order) added.
pub fn add_to_hour(row: &[u8], values: &[Option<f64>]) -> Vec<u8> {
    let mut aggs = decode_hour(row);
    aggs.resize(
        values.len().max(aggs.len()),
        Aggregate {
            count: 0,
            sum: 0.0,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
        },
    );
    for (a, v) in aggs.iter_mut().zip(values) {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            a.count += 1;
            a.sum += v;
            a.min = a.min.min(v as f32);
            a.max = a.max.max(v as f32);
        }
    }
    aggs.iter()
        .flat_map(|a| {
            let mut b = Vec::with_capacity(AGG);
            b.extend(a.count.to_le_bytes());
            b.extend(a.sum.to_le_bytes());
            b.extend(a.min.to_le_bytes());
            b.extend(a.max.to_le_bytes());
            b
        })
        .collect()
}

/// Raw and hourly bytes a sample of `width` values costs, before the database's own
/// overhead (for the storage estimate in the docs).
pub fn row_bytes(width: usize) -> (usize, usize) {
    (RAW * width, AGG * width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_rows_round_trip_with_gaps() {
        let row = encode(&[Some(12.5), None, Some(3.0e9)]);
        assert_eq!(row.len(), 12);
        assert_eq!(decode(&row), [Some(12.5), None, Some(3.0e9)]);
    }

    #[test]
    fn an_hour_keeps_count_mean_min_and_max() {
        let mut hour = Vec::new();
        for v in [
            [Some(10.0), None],
            [Some(30.0), Some(1.0)],
            [Some(20.0), None],
        ] {
            hour = add_to_hour(&hour, &v);
        }
        let aggs = decode_hour(&hour);
        assert_eq!(aggs[0].count, 3);
        assert_eq!(aggs[0].mean(), Some(20.0));
        assert_eq!((aggs[0].min, aggs[0].max), (10.0, 30.0));
        assert_eq!((aggs[1].count, aggs[1].mean()), (1, Some(1.0)));
    }
}
