# The scale series: N buckets, each with a CORS rule and tags (2N Terraform resources; N in our
# spec, where CORS is part of the bucket). Generated twin: scripts/bench-engine writes the spec.

terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "5.100.0" }
  }
}

variable "endpoint" { type = string }
variable "n" { type = number }

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  s3_use_path_style           = true
  endpoints {
    s3  = var.endpoint
    sts = var.endpoint
  }
}

resource "aws_s3_bucket" "b" {
  count  = var.n
  bucket = format("bench-bucket-%04d", count.index)
  tags   = { app = "cruddur", index = tostring(count.index) }
}

resource "aws_s3_bucket_cors_configuration" "b" {
  count  = var.n
  bucket = aws_s3_bucket.b[count.index].id
  cors_rule {
    allowed_methods = ["PUT"]
    allowed_origins = ["https://cruddur.local"]
    allowed_headers = ["*"]
    max_age_seconds = 3000
  }
}
