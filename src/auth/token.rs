//! JWT issue and verification. HS256 only (the algorithm is pinned, so `alg: none` and key
//! confusion are refused), with every registered claim required. A valid signature is not enough:
//! the service layer also checks the token's database row, so revocation is immediate.
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AppError;

pub const ISSUER: &str = "raven-registry";
pub const AUDIENCE: &str = "raven-registry-api";
/// Clock skew tolerated between instances.
const LEEWAY_SECS: u64 = 30;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
    pub iss: String,
    pub aud: String,
}

#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl TokenKeys {
    pub fn new(secret: &[u8]) -> TokenKeys {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = LEEWAY_SECS;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        TokenKeys { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret), validation }
    }

    pub fn issue(
        &self,
        user_id: Uuid,
        token_id: Uuid,
        issued: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<String, AppError> {
        let claims = Claims {
            sub: user_id,
            iat: issued.timestamp(),
            exp: expires.timestamp(),
            jti: token_id,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(AppError::internal)
    }

    /// Checks signature, algorithm, expiry, issuer and audience. `iat` and `jti` are required by the
    /// `Claims` type itself. The reason for a refusal is not told to the client.
    pub fn verify(&self, token: &str) -> Result<Claims, AppError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map(|d| d.claims).map_err(|e| {
            tracing::debug!(reason = %e, "token refused");
            AppError::Unauthenticated("invalid or expired token".into())
        })
    }
}
