//! AWS partitions: the `aws` in `arn:aws:...` is `aws-cn` in China and `aws-us-gov` in
//! GovCloud, and service domains end in `amazonaws.com.cn` in China. Every ARN and domain the
//! engine builds takes its partition from here, never from a literal.

/// A partition: its name in ARNs and the DNS suffix of its service endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub name: &'static str,
    pub dns_suffix: &'static str,
}

const AWS: Partition = Partition { name: "aws", dns_suffix: "amazonaws.com" };
const CHINA: Partition = Partition { name: "aws-cn", dns_suffix: "amazonaws.com.cn" };
const GOVCLOUD: Partition = Partition { name: "aws-us-gov", dns_suffix: "amazonaws.com" };
const ISO: Partition = Partition { name: "aws-iso", dns_suffix: "c2s.ic.gov" };
const ISO_B: Partition = Partition { name: "aws-iso-b", dns_suffix: "sc2s.sgov.gov" };

/// The partition a region belongs to (the SDK's own endpoint rules use the same prefixes).
pub fn of_region(region: &str) -> Partition {
    if region.starts_with("cn-") {
        CHINA
    } else if region.starts_with("us-gov-") {
        GOVCLOUD
    } else if region.starts_with("us-isob-") {
        ISO_B
    } else if region.starts_with("us-iso-") {
        ISO
    } else {
        AWS
    }
}

/// The partition an ARN names (`arn:PARTITION:...`), as GetCallerIdentity reports it.
pub fn of_arn(arn: &str) -> Option<Partition> {
    let name = arn.strip_prefix("arn:")?.split(':').next()?;
    [AWS, CHINA, GOVCLOUD, ISO, ISO_B].into_iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_and_arns_name_their_partition() {
        assert_eq!(of_region("us-east-1").name, "aws");
        assert_eq!(of_region("eu-central-2").name, "aws");
        assert_eq!(of_region("cn-north-1"), CHINA);
        assert_eq!(of_region("cn-north-1").dns_suffix, "amazonaws.com.cn");
        assert_eq!(of_region("us-gov-west-1").name, "aws-us-gov");
        assert_eq!(of_arn("arn:aws-cn:sts::123456789012:assumed-role/r/s"), Some(CHINA));
        assert_eq!(of_arn("arn:aws:iam::123456789012:user/u"), Some(AWS));
        assert_eq!(of_arn("not an arn"), None);
    }
}
