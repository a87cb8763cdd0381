//! The limits AWS puts on the names of each kind's objects. A kind's schema marks the
//! attribute that names the object with its rule ([`super::schema::Attribute::named`]); the
//! spec checks every known name when it loads, with the stage applied, so a name AWS would
//! refuse is reported with its file, line and value before any AWS call.

use std::net::Ipv4Addr;

/// How AWS limits one kind of name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// An S3 bucket name.
    Bucket,
    /// A Lambda function name.
    Function,
    /// An IAM role name.
    Role,
    /// An SNS topic name.
    Topic,
    /// A CloudWatch Logs group name.
    LogGroup,
    /// A CloudFront origin access control name.
    OriginAccessControl,
    /// An API Gateway API or authorizer name.
    ApiGateway,
    /// A DNS name (a Route 53 record, a CloudFront alias).
    Dns,
}

impl NameRule {
    /// The limit in words, as the docs and messages give it.
    pub fn describe(self) -> &'static str {
        match self {
            NameRule::Bucket => {
                "3-63 characters: lowercase letters, digits, dots and hyphens, beginning and ending with a letter or \
                 digit, no two dots together, not an IP address"
            }
            NameRule::Function => "1-64 characters: letters, digits, hyphens and underscores",
            NameRule::Role => "1-64 characters: letters, digits and + = , . @ _ -",
            NameRule::Topic => "1-256 characters: letters, digits, hyphens and underscores",
            NameRule::LogGroup => "1-512 characters: letters, digits and . - _ / #",
            NameRule::OriginAccessControl => "1-64 characters",
            NameRule::ApiGateway => "1-128 characters",
            NameRule::Dns => {
                "labels of 1-63 letters, digits and hyphens (not beginning or ending with one; `*` as the first \
                 label), 253 characters in all"
            }
        }
    }

    /// Whether AWS accepts `name`; if not, what breaks the limit.
    pub fn check(self, name: &str) -> Result<(), String> {
        let len = name.chars().count();
        let length = |min: usize, max: usize| -> Result<(), String> {
            if len < min || len > max {
                return Err(format!("it is {len} characters long; AWS allows {min}-{max}"));
            }
            Ok(())
        };
        let only = |allowed: &dyn Fn(char) -> bool| -> Result<(), String> {
            match name.chars().find(|c| !allowed(*c)) {
                Some(c) => Err(format!("`{c}` is not allowed")),
                None => Ok(()),
            }
        };
        match self {
            NameRule::Bucket => {
                length(3, 63)?;
                only(&|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')?;
                let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
                if !edge(name.chars().next()) || !edge(name.chars().last()) {
                    return Err("it must begin and end with a lowercase letter or a digit".into());
                }
                if name.contains("..") {
                    return Err("two dots may not be adjacent".into());
                }
                if name.parse::<Ipv4Addr>().is_ok() {
                    return Err("it may not be an IP address".into());
                }
                if name.starts_with("xn--") || name.ends_with("-s3alias") || name.ends_with("--ol-s3") {
                    return Err("the prefix xn-- and the suffixes -s3alias and --ol-s3 are reserved".into());
                }
                Ok(())
            }
            NameRule::Function => {
                length(1, 64)?;
                only(&|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            }
            NameRule::Role => {
                length(1, 64)?;
                only(&|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
            }
            // A FIFO topic's name ends in .fifo; the kind makes standard topics only.
            NameRule::Topic => {
                length(1, 256)?;
                only(&|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            }
            NameRule::LogGroup => {
                length(1, 512)?;
                only(&|c| c.is_ascii_alphanumeric() || "._-/#".contains(c))
            }
            NameRule::OriginAccessControl => length(1, 64),
            NameRule::ApiGateway => length(1, 128),
            NameRule::Dns => {
                let bare = name.strip_suffix('.').unwrap_or(name);
                if bare.len() > 253 {
                    return Err(format!("it is {} characters long; DNS allows 253", bare.len()));
                }
                for (i, label) in bare.split('.').enumerate() {
                    if i == 0 && label == "*" {
                        continue;
                    }
                    if label.is_empty() || label.len() > 63 {
                        return Err(format!("the label `{label}` is {} characters long; DNS allows 1-63", label.len()));
                    }
                    if let Some(c) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-')) {
                        return Err(format!("`{c}` is not allowed in the label `{label}`"));
                    }
                    if label.starts_with('-') || label.ends_with('-') {
                        return Err(format!("the label `{label}` begins or ends with a hyphen"));
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::NameRule::*;

    #[test]
    fn each_rule_takes_what_aws_takes_and_says_what_breaks_it() {
        assert_eq!(Bucket.check("cruddur-uploads-pr-17"), Ok(()));
        assert_eq!(Bucket.check("assets.cruddur.test"), Ok(()));
        assert!(Bucket.check(&"a".repeat(64)).expect_err("too long").contains("64 characters long; AWS allows 3-63"));
        assert!(Bucket.check("ab").is_err());
        assert!(Bucket.check("Uploads").expect_err("upper").contains("`U`"));
        assert!(Bucket.check("a..b").is_err());
        assert!(Bucket.check("-ab").is_err());
        assert!(Bucket.check("192.168.1.1").is_err());
        assert_eq!(Function.check("cruddur-pr-17-thumbnailer"), Ok(()));
        assert!(Function.check(&"f".repeat(65)).is_err());
        assert!(Function.check("a.b").is_err());
        assert_eq!(Role.check("cruddur+ci@x"), Ok(()));
        assert!(Role.check("a/b").is_err());
        assert_eq!(Topic.check("cruddur_assets-2"), Ok(()));
        assert!(Topic.check("a.fifo").is_err());
        assert_eq!(LogGroup.check("/aws/lambda/cruddur-pr-17-presigner"), Ok(()));
        assert!(LogGroup.check("a b").is_err());
        assert_eq!(Dns.check("assets-pr-17.cruddur.test"), Ok(()));
        assert_eq!(Dns.check("*.cruddur.test."), Ok(()));
        assert!(Dns.check(&format!("{}.test", "a".repeat(64))).expect_err("label").contains("1-63"));
        assert!(Dns.check("a_b.test").is_err());
        assert!(Dns.check("-a.test").is_err());
        assert!(Dns.check("a..test").is_err());
    }
}
