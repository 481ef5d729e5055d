//! The base64 flavour of Web Push (keys, `auth` secrets, subscription fields). Its own module
//! so that the push modules share it without reaching into `push` itself.

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// base64url as browsers write it (no padding), also accepting padded input.
pub const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
