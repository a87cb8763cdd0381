//! Shared AWS configuration and clients, created on first use so commands that make no AWS
//! call (validate, graph, a plan of an empty spec) never load credentials.

use tokio::sync::OnceCell;

/// Settings for reaching AWS beyond the standard environment and profile chain.
#[derive(Clone, Debug, Default)]
pub struct AwsOptions {
    /// Path-style S3 addressing, for emulators reached by host name.
    pub s3_force_path_style: bool,
}

/// One SDK configuration and one client per service for the whole command, so connections
/// are reused across resources.
pub struct Aws {
    options: AwsOptions,
    config: OnceCell<aws_config::SdkConfig>,
    s3: OnceCell<aws_sdk_s3::Client>,
    sns: OnceCell<aws_sdk_sns::Client>,
}

impl Aws {
    pub fn new(options: AwsOptions) -> Self {
        Self {
            options,
            config: OnceCell::new(),
            s3: OnceCell::new(),
            sns: OnceCell::new(),
        }
    }

    /// The configuration from the standard chain: environment (including `AWS_ENDPOINT_URL`),
    /// profiles, SSO.
    pub async fn config(&self) -> &aws_config::SdkConfig {
        self.config
            .get_or_init(|| aws_config::load_defaults(aws_config::BehaviorVersion::latest()))
            .await
    }

    /// The region requests go to, as the SDK resolved it.
    pub async fn region(&self) -> String {
        self.config()
            .await
            .region()
            .map_or_else(|| "us-east-1".to_string(), |r| r.to_string())
    }

    pub async fn s3(&self) -> &aws_sdk_s3::Client {
        self.s3
            .get_or_init(|| async {
                let conf = aws_sdk_s3::config::Builder::from(self.config().await)
                    .force_path_style(self.options.s3_force_path_style)
                    .build();
                aws_sdk_s3::Client::from_conf(conf)
            })
            .await
    }

    pub async fn sns(&self) -> &aws_sdk_sns::Client {
        self.sns
            .get_or_init(|| async { aws_sdk_sns::Client::new(self.config().await) })
            .await
    }
}
