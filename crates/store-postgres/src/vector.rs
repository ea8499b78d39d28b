//! pgvector's `vector` type on the wire: a 16-bit dimension count, 16 unused bits, then the
//! components as big-endian `float4`. Written here (a dozen lines) rather than taking the
//! `pgvector` crate, whose sqlx range can pull a second sqlx into the build.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo};
use sqlx::{Encode, Postgres, Type};

/// A vector to bind as a `vector` parameter.
pub struct PgVector<'a>(pub &'a [f32]);

impl Type<Postgres> for PgVector<'_> {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_name("vector")
    }
}

impl Encode<'_, Postgres> for PgVector<'_> {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        let dims =
            i16::try_from(self.0.len()).map_err(|_| "vector has more than 32767 dimensions")?;
        buf.extend_from_slice(&dims.to_be_bytes());
        buf.extend_from_slice(&0i16.to_be_bytes());
        for x in self.0 {
            buf.extend_from_slice(&x.to_be_bytes());
        }
        Ok(IsNull::No)
    }
}

impl PgHasArrayType for PgVector<'_> {
    fn array_type_info() -> PgTypeInfo {
        PgTypeInfo::with_name("_vector")
    }
}
