//! Client-side envelope encryption of what the engine stores: the state, its backup, each
//! journal record and saved plans.
//!
//! One data key per command (`GenerateDataKey`, AES-256) seals everything the command writes
//! with AES-256-GCM; only the data key encrypted by KMS is stored, beside each ciphertext, in
//! an [`Envelope`]. Reading asks KMS to decrypt each distinct data key once. The plaintext key
//! never leaves memory.
//!
//! What a command was told (`state: { encryption: kms:KEY }` in the spec, or
//! `--state-encryption kms:KEY`) must match what is stored, or the command stops before it
//! writes anything: an encrypted state read without a key, a state sealed under another key,
//! or a plain state where a key is asked for. `state encrypt` and `state decrypt` move from
//! one form to the other; they read either form.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lc_rs::aead::{AES_256_GCM, Aad, Nonce, RandomizedNonceKey};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use super::StateError;
use crate::provider::{Aws, ProviderError};

/// The envelope format this build writes and reads.
const ENVELOPE_VERSION: u32 = 1;

/// The KMS encryption context of every data key: a key policy can require it
/// (`kms:EncryptionContext:application`).
const CONTEXT: (&str, &str) = ("application", "cruddur-infra");

/// What a sealed document is; bound to its ciphertext, so a journal record cannot stand in for
/// a state or a plan.
#[derive(Clone, Copy, Debug)]
pub enum Purpose {
    State,
    Journal,
    Plan,
}

impl Purpose {
    fn aad(self) -> &'static [u8] {
        match self {
            Purpose::State => b"cruddur-infra/state",
            Purpose::Journal => b"cruddur-infra/journal",
            Purpose::Plan => b"cruddur-infra/plan",
        }
    }
}

/// A sealed document as stored: JSON, on one line.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    cruddur_encrypted: u32,
    /// The ARN of the KMS key the data key is encrypted under.
    kms_key_id: String,
    encrypted_data_key: String,
    nonce: String,
    ciphertext: String,
}

impl Envelope {
    /// The envelope `bytes` hold, or `None` when they are not one (a plain document).
    pub fn find(bytes: &[u8]) -> Result<Option<Envelope>, String> {
        let head = &bytes[..bytes.len().min(64)];
        if !head.windows(19).any(|w| w == b"\"cruddur_encrypted\"") {
            return Ok(None);
        }
        let envelope: Envelope = serde_json::from_slice(bytes).map_err(|e| format!("a damaged envelope: {e}"))?;
        if envelope.cruddur_encrypted != ENVELOPE_VERSION {
            return Err(format!("envelope format {}, this build reads {ENVELOPE_VERSION}", envelope.cruddur_encrypted));
        }
        Ok(Some(envelope))
    }

    pub fn key_id(&self) -> &str {
        &self.kms_key_id
    }
}

/// `kms:KEY` (a key id, ARN, alias name or alias ARN) as given on the command line or in the
/// spec: the key, or why the text is not one.
pub fn parse_setting(text: &str) -> Result<String, String> {
    match text.trim().strip_prefix("kms:") {
        Some(key) if !key.trim().is_empty() => Ok(key.trim().to_string()),
        _ => Err(format!(
            "`{text}` is not an encryption setting: write kms:KEY, with a KMS key id, key ARN or alias (kms:alias/cruddur-state)"
        )),
    }
}

/// A 256-bit AES data key, as KMS hands it out.
type KeyBytes = [u8; 32];

/// A data key in memory.
struct DataKey {
    key: KeyBytes,
    encrypted: String,
    key_arn: String,
}

/// How a store turns documents into bytes and back.
pub struct Codec<'a> {
    aws: Option<&'a Aws>,
    /// The KMS key documents are sealed with; `None`: stored in plain text.
    key: Option<String>,
    /// Refuse to read a document stored in the other form, or under another key.
    strict: bool,
    data_key: OnceCell<DataKey>,
    key_arn: OnceCell<String>,
    /// Data keys KMS has decrypted this command, by their encrypted form.
    opened: Mutex<HashMap<String, KeyBytes>>,
}

impl<'a> Codec<'a> {
    /// Plain text, and an encrypted document is refused (tests, and stores without AWS).
    pub fn plain() -> Self {
        Self::build(None, None, true)
    }

    /// What a command was told: seal with `key` (or store plain without), and refuse to read
    /// a document stored otherwise.
    pub fn configured(aws: &'a Aws, key: Option<String>) -> Self {
        Self::build(Some(aws), key, true)
    }

    /// For `state encrypt|decrypt`: reads either form under any key it can use, writes with `key`.
    pub fn migrating_to(aws: &'a Aws, key: Option<String>) -> Self {
        Self::build(Some(aws), key, false)
    }

    /// Reads either form under any key it can use (a saved plan names its own key); never
    /// used to write.
    pub fn any_reader(aws: &'a Aws) -> Self {
        Self::build(Some(aws), None, false)
    }

    fn build(aws: Option<&'a Aws>, key: Option<String>, strict: bool) -> Self {
        Self { aws, key, strict, data_key: OnceCell::new(), key_arn: OnceCell::new(), opened: Mutex::default() }
    }

    /// The key documents are sealed with, as configured.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// `plain` as it is stored: unchanged without a key, else an envelope on one line.
    pub async fn seal(&self, plain: &[u8], purpose: Purpose, location: &str) -> Result<Vec<u8>, StateError> {
        let Some(key_id) = &self.key else { return Ok(plain.to_vec()) };
        let data_key = self
            .data_key
            .get_or_try_init(|| self.generate(key_id))
            .await
            .map_err(|e| remote(location, e, &format!("cannot make a data key with KMS key {key_id}")))?;
        let (nonce_bytes, ciphertext) = seal_with(&data_key.key, purpose.aad(), plain)
            .ok_or_else(|| encryption(location, "AES-GCM refused to encrypt".into(), String::new()))?;
        let envelope = Envelope {
            cruddur_encrypted: ENVELOPE_VERSION,
            kms_key_id: data_key.key_arn.clone(),
            encrypted_data_key: data_key.encrypted.clone(),
            nonce: B64.encode(nonce_bytes),
            ciphertext: B64.encode(ciphertext),
        };
        Ok(serde_json::to_vec(&envelope).expect("plain data"))
    }

    /// The document `stored` holds, decrypted if it is sealed. `location` names it in errors.
    pub async fn open(&self, stored: &[u8], purpose: Purpose, location: &str) -> Result<Vec<u8>, StateError> {
        let envelope = Envelope::find(stored).map_err(|reason| {
            encryption(location, reason, "restore the backup beside it, or the previous object version".into())
        })?;
        let Some(envelope) = envelope else {
            if let (true, Some(key)) = (self.strict, &self.key) {
                return Err(encryption(
                    location,
                    format!("it is stored in plain text, and this command was asked to encrypt it with kms:{key}"),
                    format!(
                        "encrypt it once with `cruddur-infra state encrypt --key kms:{key}` (under the lock, keeping \
                         no plain copy), or drop the encryption setting"
                    ),
                ));
            }
            return Ok(stored.to_vec());
        };
        if self.strict {
            self.check_key(&envelope, location).await?;
        }
        let Some(aws) = self.aws else {
            return Err(encryption(
                location,
                format!("it is encrypted with KMS key {}, and this command has no key", envelope.kms_key_id),
                hint_for_missing_key(&envelope.kms_key_id),
            ));
        };
        let key = self.data_key_of(aws, &envelope, location).await?;
        let nonce = B64.decode(&envelope.nonce).ok();
        let ciphertext = B64.decode(&envelope.ciphertext).ok();
        let (Some(nonce), Some(ciphertext)) = (nonce, ciphertext) else {
            return Err(encryption(location, "the envelope's nonce or ciphertext is not base64".into(), String::new()));
        };
        open_with(&key, purpose.aad(), &nonce, ciphertext).ok_or_else(|| {
            encryption(
                location,
                "the ciphertext does not authenticate: it was altered, or it is not this kind of document".into(),
                "restore the backup beside it (or the previous object version)".into(),
            )
        })
    }

    /// A strict reader refuses an envelope it was not told about, or one under another key.
    async fn check_key(&self, envelope: &Envelope, location: &str) -> Result<(), StateError> {
        let Some(key) = &self.key else {
            return Err(encryption(
                location,
                format!("it is encrypted with KMS key {}, and this command was given no key", envelope.kms_key_id),
                hint_for_missing_key(&envelope.kms_key_id),
            ));
        };
        let aws = self.aws.expect("a configured key comes with AWS");
        let arn = self
            .key_arn
            .get_or_try_init(|| async {
                let kms = &kms_for(aws, key).await;
                aws.retried(|| async {
                    let out = kms
                        .describe_key()
                        .key_id(key)
                        .send()
                        .await
                        .map_err(|e| ProviderError::from_sdk("DescribeKey", e))?;
                    Ok(out.key_metadata.map(|m| m.arn.unwrap_or(m.key_id)).unwrap_or_default())
                })
                .await
            })
            .await
            .map_err(|e| remote(location, e, &format!("cannot look up KMS key {key}")))?;
        if *arn != envelope.kms_key_id {
            return Err(encryption(
                location,
                format!("it is encrypted with KMS key {}, not with kms:{key} ({arn})", envelope.kms_key_id),
                format!(
                    "to move it to the new key, run `cruddur-infra state encrypt --key kms:{key}`; to keep the old \
                     one, set kms:{} (nothing was written)",
                    envelope.kms_key_id
                ),
            ));
        }
        Ok(())
    }

    async fn generate(&self, key_id: &str) -> Result<DataKey, ProviderError> {
        let aws = self.aws.expect("a configured key comes with AWS");
        let kms = &kms_for(aws, key_id).await;
        aws.retried(|| async {
            let out = kms
                .generate_data_key()
                .key_id(key_id)
                .key_spec(DataKeySpec::Aes256)
                .encryption_context(CONTEXT.0, CONTEXT.1)
                .send()
                .await
                .map_err(|e| ProviderError::from_sdk("GenerateDataKey", e))?;
            let plain = out.plaintext.map(Blob::into_inner).and_then(|k| KeyBytes::try_from(k.as_slice()).ok());
            let (Some(plain), Some(encrypted)) = (plain, out.ciphertext_blob) else {
                return Err(ProviderError::unexpected("GenerateDataKey", "KMS answered without a 256-bit data key"));
            };
            Ok(DataKey {
                key: plain,
                encrypted: B64.encode(encrypted.into_inner()),
                key_arn: out.key_id.unwrap_or_else(|| key_id.to_string()),
            })
        })
        .await
    }

    async fn data_key_of(&self, aws: &Aws, envelope: &Envelope, location: &str) -> Result<KeyBytes, StateError> {
        if let Some(key) = self.opened.lock().expect("not poisoned").get(&envelope.encrypted_data_key) {
            return Ok(*key);
        }
        if let Some(ours) = self.data_key.get().filter(|k| k.encrypted == envelope.encrypted_data_key) {
            return Ok(ours.key);
        }
        let blob = B64
            .decode(&envelope.encrypted_data_key)
            .map_err(|_| encryption(location, "the envelope's data key is not base64".into(), String::new()))?;
        let kms = &kms_for(aws, &envelope.kms_key_id).await;
        let plain = aws
            .retried(|| async {
                let out = kms
                    .decrypt()
                    .ciphertext_blob(Blob::new(blob.clone()))
                    .key_id(&envelope.kms_key_id)
                    .encryption_context(CONTEXT.0, CONTEXT.1)
                    .send()
                    .await
                    .map_err(|e| ProviderError::from_sdk("Decrypt", e))?;
                out.plaintext
                    .map(Blob::into_inner)
                    .and_then(|k| KeyBytes::try_from(k.as_slice()).ok())
                    .ok_or_else(|| ProviderError::unexpected("Decrypt", "KMS answered without a 256-bit key"))
            })
            .await
            .map_err(|e| {
                remote(location, e, &format!("cannot decrypt its data key with KMS key {}", envelope.kms_key_id))
            })?;
        self.opened.lock().expect("not poisoned").insert(envelope.encrypted_data_key.clone(), plain);
        Ok(plain)
    }
}

/// The KMS client of the region a key lives in: an ARN names it (a state sealed in one region
/// is opened from a command configured for another); an id or alias is in the configured one.
async fn kms_for(aws: &Aws, key: &str) -> aws_sdk_kms::Client {
    match key.strip_prefix("arn:").and_then(|rest| rest.split(':').nth(2)).filter(|r| !r.is_empty()) {
        Some(region) => aws.kms_in(region).await,
        None => aws.kms().await.clone(),
    }
}

/// AES-256-GCM of `plain` under `key` with `aad`: the nonce and the ciphertext with its tag.
/// AWS-LC draws the 96-bit nonce from the operating system's CSPRNG: one data key seals many
/// documents in a command, and a repeated nonce would break GCM.
fn seal_with(key: &KeyBytes, aad: &[u8], plain: &[u8]) -> Option<([u8; 12], Vec<u8>)> {
    let sealer = RandomizedNonceKey::new(&AES_256_GCM, key).ok()?;
    let mut ciphertext = plain.to_vec();
    let nonce = sealer.seal_in_place_append_tag(Aad::from(aad), &mut ciphertext).ok()?;
    Some((*nonce.as_ref(), ciphertext))
}

/// The plain text of what [`seal_with`] made, or `None` if it does not authenticate.
fn open_with(key: &KeyBytes, aad: &[u8], nonce: &[u8], mut ciphertext: Vec<u8>) -> Option<Vec<u8>> {
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let opener = RandomizedNonceKey::new(&AES_256_GCM, key).ok()?;
    opener.open_in_place(nonce, Aad::from(aad), &mut ciphertext).ok().map(|plain| plain.to_vec())
}

fn hint_for_missing_key(key_arn: &str) -> String {
    format!(
        "set `state: {{ encryption: kms:{key_arn} }}` in the spec or pass --state-encryption kms:{key_arn}; \
         `cruddur-infra state decrypt` stores it in plain text again (nothing was written)"
    )
}

fn encryption(location: &str, reason: String, hint: String) -> StateError {
    StateError::Encryption { path: location.to_string(), reason, hint }
}

fn remote(location: &str, e: ProviderError, doing: &str) -> StateError {
    StateError::Encryption {
        path: location.to_string(),
        reason: format!("{doing}: {} failed: {}: {}", e.operation, e.code, e.message),
        hint: "check that the key exists, is enabled, and that this identity may use it (kms:GenerateDataKey, \
               kms:Decrypt, kms:DescribeKey); nothing was written"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_draws_a_fresh_nonce_each_time_and_opens_only_unaltered_under_its_purpose() {
        // The same document sealed twice under one data key: two nonces, two ciphertexts; each
        // opens back; an altered byte, another purpose or another key does not.
        let key: KeyBytes = [7; 32];
        let doc = br#"{"serial": 1}"#;
        let (n1, c1) = seal_with(&key, Purpose::State.aad(), doc).expect("sealed");
        let (n2, c2) = seal_with(&key, Purpose::State.aad(), doc).expect("sealed");
        assert_ne!(n1, n2, "a nonce repeated");
        assert_ne!(c1, c2);
        assert_eq!(open_with(&key, Purpose::State.aad(), &n1, c1.clone()).as_deref(), Some(&doc[..]));
        assert_eq!(open_with(&key, Purpose::State.aad(), &n2, c2).as_deref(), Some(&doc[..]));
        let mut altered = c1.clone();
        altered[0] ^= 1;
        assert_eq!(open_with(&key, Purpose::State.aad(), &n1, altered), None);
        assert_eq!(open_with(&key, Purpose::Journal.aad(), &n1, c1.clone()), None);
        assert_eq!(open_with(&[8; 32], Purpose::State.aad(), &n1, c1.clone()), None);
        assert_eq!(open_with(&key, Purpose::State.aad(), &n1[..11], c1), None, "a short nonce");
    }

    #[test]
    fn settings_name_a_key_or_say_what_to_write() {
        assert_eq!(parse_setting("kms:alias/state").as_deref(), Ok("alias/state"));
        for bad in ["alias/state", "kms:", "kms:  ", "aes:x"] {
            assert!(parse_setting(bad).expect_err(bad).contains("kms:KEY"), "{bad}");
        }
    }

    #[test]
    fn a_plain_state_is_not_an_envelope_and_a_damaged_envelope_is_refused() {
        assert!(Envelope::find(br#"{"version": 3, "serial": 1}"#).expect("plain").is_none());
        assert!(Envelope::find(br#"{"cruddur_encrypted": 1, "kms_key_id": "k"}"#).is_err());
        assert!(
            Envelope::find(
                br#"{"cruddur_encrypted": 7, "kms_key_id": "k", "encrypted_data_key": "",
            "nonce": "", "ciphertext": ""}"#
            )
            .expect_err("newer")
            .contains("format 7")
        );
    }

    #[tokio::test]
    async fn a_plain_codec_refuses_an_envelope_naming_the_key() {
        let sealed = br#"{"cruddur_encrypted":1,"kms_key_id":"arn:aws:kms:us-east-1:1:key/k","encrypted_data_key":"AA==","nonce":"AA==","ciphertext":"AA=="}"#;
        let e = Codec::plain().open(sealed, Purpose::State, "s.json").await.expect_err("refused");
        assert!(e.to_string().contains("key/k"), "{e}");
        assert_eq!(Codec::plain().seal(b"{}", Purpose::State, "s.json").await.expect("plain"), b"{}");
    }
}
