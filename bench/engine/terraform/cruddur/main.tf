# The Cruddur stack of specs/cruddur.yaml, written for Terraform + hashicorp/aws as a team
# would, resource for resource: the peer of scripts/bench-engine. Same moto server, same zips.

terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "5.100.0" }
  }
}

variable "endpoint" { type = string }
variable "uploads_bucket_name" { type = string }
variable "assets_bucket_name" { type = string }
variable "domain_name" { type = string }
variable "assets_certificate_arn" { type = string }
variable "cognito_user_pool_id" { type = string }
variable "cognito_user_pool_client_id" { type = string }
variable "frontend_origin" { type = string }
variable "thumbing_webhook_url" { type = string }
variable "thumbnailer_zip" { type = string }
variable "authorizer_zip" { type = string }
variable "presigner_zip" { type = string }
variable "folder_output" { default = "avatars/processed/" }

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  s3_use_path_style           = true
  endpoints {
    s3             = var.endpoint
    sns            = var.endpoint
    iam            = var.endpoint
    sts            = var.endpoint
    lambda         = var.endpoint
    cloudfront     = var.endpoint
    route53        = var.endpoint
    apigatewayv2   = var.endpoint
    cognitoidp     = var.endpoint
    cloudwatchlogs = var.endpoint
  }
}

data "aws_caller_identity" "current" {}
data "aws_route53_zone" "main" { name = var.domain_name }

locals {
  lambda_trust = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "lambda.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
  public_access_block = { block_public_acls = true, ignore_public_acls = true, block_public_policy = true, restrict_public_buckets = true }
}

resource "aws_s3_bucket" "uploads" {
  bucket = var.uploads_bucket_name
  tags   = { app = "cruddur", purpose = "avatar-uploads" }
}

resource "aws_s3_bucket_cors_configuration" "uploads" {
  bucket = aws_s3_bucket.uploads.id
  cors_rule {
    allowed_methods = ["PUT"]
    allowed_origins = [var.frontend_origin]
    allowed_headers = ["*"]
    expose_headers  = ["x-amz-server-side-encryption", "x-amz-request-id", "x-amz-id-2"]
    max_age_seconds = 3000
  }
}

resource "aws_s3_bucket_public_access_block" "uploads" {
  bucket                  = aws_s3_bucket.uploads.id
  block_public_acls       = true
  ignore_public_acls      = true
  block_public_policy     = true
  restrict_public_buckets = true
}

import {
  to = aws_s3_bucket.assets
  id = var.assets_bucket_name
}

resource "aws_s3_bucket" "assets" {
  bucket = var.assets_bucket_name
  tags   = { app = "cruddur", purpose = "avatar-assets" }
}

resource "aws_s3_bucket_public_access_block" "assets" {
  bucket                  = aws_s3_bucket.assets.id
  block_public_acls       = true
  ignore_public_acls      = true
  block_public_policy     = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_policy" "assets" {
  bucket = aws_s3_bucket.assets.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AllowCloudFrontServicePrincipalReadOnly"
      Effect    = "Allow"
      Principal = { Service = "cloudfront.amazonaws.com" }
      Action    = "s3:GetObject"
      Resource  = "${aws_s3_bucket.assets.arn}/*"
      Condition = { StringEquals = { "AWS:SourceArn" = aws_cloudfront_distribution.assets.arn } }
    }]
  })
}

resource "aws_s3_bucket_notification" "uploads" {
  bucket = aws_s3_bucket.uploads.id
  lambda_function {
    lambda_function_arn = aws_lambda_function.thumbnailer.arn
    events              = ["s3:ObjectCreated:*"]
  }
  depends_on = [aws_lambda_permission.thumbnailer_from_uploads]
}

resource "aws_s3_bucket_notification" "assets" {
  bucket = aws_s3_bucket.assets.id
  topic {
    topic_arn     = aws_sns_topic.assets.arn
    events        = ["s3:ObjectCreated:Put"]
    filter_prefix = var.folder_output
  }
  depends_on = [aws_sns_topic_policy.assets]
}

resource "aws_sns_topic" "assets" {
  name = "cruddur-assets"
  tags = { app = "cruddur" }
}

resource "aws_sns_topic_policy" "assets" {
  arn = aws_sns_topic.assets.arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AllowAssetsBucketPublish"
      Effect    = "Allow"
      Principal = { Service = "s3.amazonaws.com" }
      Action    = "sns:Publish"
      Resource  = aws_sns_topic.assets.arn
      Condition = {
        ArnLike      = { "aws:SourceArn" = aws_s3_bucket.assets.arn }
        StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id }
      }
    }]
  })
}

resource "aws_sns_topic_subscription" "webhook" {
  topic_arn = aws_sns_topic.assets.arn
  protocol  = "https"
  endpoint  = var.thumbing_webhook_url
  # As the spec: the webhook does not confirm (on AWS the subscription stays pending), so
  # neither tool waits for a confirmation.
}

resource "aws_iam_role" "thumbnailer" {
  name               = "cruddur-thumbnailer"
  assume_role_policy = local.lambda_trust
}

resource "aws_iam_role_policy_attachment" "thumbnailer_logs" {
  role       = aws_iam_role.thumbnailer.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
}

resource "aws_iam_role_policy" "thumbnailing" {
  name = "thumbnailing"
  role = aws_iam_role.thumbnailer.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Sid = "ReadOriginals", Effect = "Allow", Action = "s3:GetObject", Resource = "${aws_s3_bucket.uploads.arn}/*" },
      { Sid = "WriteProcessed", Effect = "Allow", Action = "s3:PutObject", Resource = "${aws_s3_bucket.assets.arn}/${var.folder_output}*" },
    ]
  })
}

resource "aws_iam_role" "presigner" {
  name               = "cruddur-presigner"
  assume_role_policy = local.lambda_trust
}

resource "aws_iam_role_policy_attachment" "presigner_logs" {
  role       = aws_iam_role.presigner.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
}

resource "aws_iam_role_policy" "presigning" {
  name = "presigning"
  role = aws_iam_role.presigner.id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Sid = "PutUploads", Effect = "Allow", Action = "s3:PutObject", Resource = "${aws_s3_bucket.uploads.arn}/*" }]
  })
}

resource "aws_iam_role" "authorizer" {
  name               = "cruddur-authorizer"
  assume_role_policy = local.lambda_trust
}

resource "aws_iam_role_policy_attachment" "authorizer_logs" {
  role       = aws_iam_role.authorizer.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
}

# Each function's log group, made before the function (as specs/cruddur.yaml does).
resource "aws_cloudwatch_log_group" "thumbnailer" {
  name              = "/aws/lambda/cruddur-thumbnailer"
  retention_in_days = 14
}

resource "aws_cloudwatch_log_group" "authorizer" {
  name              = "/aws/lambda/cruddur-authorizer"
  retention_in_days = 14
}

resource "aws_cloudwatch_log_group" "presigner" {
  name              = "/aws/lambda/cruddur-presigner"
  retention_in_days = 14
}

resource "aws_lambda_function" "thumbnailer" {
  depends_on       = [aws_cloudwatch_log_group.thumbnailer]
  function_name    = "cruddur-thumbnailer"
  role             = aws_iam_role.thumbnailer.arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = ["x86_64"]
  memory_size      = 1024
  timeout          = 30
  filename         = var.thumbnailer_zip
  source_code_hash = filebase64sha256(var.thumbnailer_zip)
  environment {
    variables = {
      DEST_BUCKET_NAME = aws_s3_bucket.assets.id
      FOLDER_OUTPUT    = var.folder_output
      PROCESS_WIDTH    = "512"
      PROCESS_HEIGHT   = "512"
    }
  }
}

resource "aws_lambda_function" "authorizer" {
  depends_on       = [aws_cloudwatch_log_group.authorizer]
  function_name    = "cruddur-authorizer"
  role             = aws_iam_role.authorizer.arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = ["x86_64"]
  memory_size      = 128
  timeout          = 5
  filename         = var.authorizer_zip
  source_code_hash = filebase64sha256(var.authorizer_zip)
  environment {
    variables = { USER_POOL_ID = var.cognito_user_pool_id, CLIENT_ID = var.cognito_user_pool_client_id }
  }
}

resource "aws_lambda_function" "presigner" {
  depends_on       = [aws_cloudwatch_log_group.presigner]
  function_name    = "cruddur-presigner"
  role             = aws_iam_role.presigner.arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = ["x86_64"]
  memory_size      = 128
  timeout          = 5
  filename         = var.presigner_zip
  source_code_hash = filebase64sha256(var.presigner_zip)
  environment {
    variables = { UPLOADS_BUCKET_NAME = aws_s3_bucket.uploads.id }
  }
}

resource "aws_lambda_permission" "thumbnailer_from_uploads" {
  function_name  = aws_lambda_function.thumbnailer.function_name
  statement_id   = "AllowUploadsBucket"
  action         = "lambda:InvokeFunction"
  principal      = "s3.amazonaws.com"
  source_arn     = aws_s3_bucket.uploads.arn
  source_account = data.aws_caller_identity.current.account_id
}

resource "aws_lambda_permission" "authorizer_from_api" {
  function_name = aws_lambda_function.authorizer.function_name
  statement_id  = "AllowApiAuthorizer"
  action        = "lambda:InvokeFunction"
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.avatars.execution_arn}/authorizers/${aws_apigatewayv2_authorizer.cognito.id}"
}

resource "aws_lambda_permission" "presigner_from_api" {
  function_name = aws_lambda_function.presigner.function_name
  statement_id  = "AllowApiKeyUpload"
  action        = "lambda:InvokeFunction"
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.avatars.execution_arn}/*/*/avatars/key_upload"
}

resource "aws_cloudfront_origin_access_control" "assets" {
  name                              = "cruddur-assets"
  description                       = "CloudFront reads the private assets bucket"
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

resource "aws_cloudfront_distribution" "assets" {
  enabled         = true
  comment         = "Cruddur avatars"
  aliases         = ["assets.${var.domain_name}"]
  price_class     = "PriceClass_100"
  is_ipv6_enabled = true
  origin {
    domain_name              = aws_s3_bucket.assets.bucket_regional_domain_name
    origin_id                = "assets-bucket"
    origin_access_control_id = aws_cloudfront_origin_access_control.assets.id
  }
  default_cache_behavior {
    target_origin_id       = "assets-bucket"
    viewer_protocol_policy = "redirect-to-https"
    allowed_methods        = ["GET", "HEAD"]
    cached_methods         = ["GET", "HEAD"]
    cache_policy_id        = "658327ea-f89d-4fab-a63d-7e88639e58f6"
  }
  restrictions {
    geo_restriction { restriction_type = "none" }
  }
  viewer_certificate {
    acm_certificate_arn      = var.assets_certificate_arn
    ssl_support_method       = "sni-only"
    minimum_protocol_version = "TLSv1.2_2021"
  }
}

resource "aws_route53_record" "assets_ipv4" {
  zone_id = data.aws_route53_zone.main.zone_id
  name    = "assets.${var.domain_name}"
  type    = "A"
  alias {
    name                   = aws_cloudfront_distribution.assets.domain_name
    zone_id                = aws_cloudfront_distribution.assets.hosted_zone_id
    evaluate_target_health = false
  }
}

resource "aws_route53_record" "assets_ipv6" {
  zone_id = data.aws_route53_zone.main.zone_id
  name    = "assets.${var.domain_name}"
  type    = "AAAA"
  alias {
    name                   = aws_cloudfront_distribution.assets.domain_name
    zone_id                = aws_cloudfront_distribution.assets.hosted_zone_id
    evaluate_target_health = false
  }
}

resource "aws_apigatewayv2_api" "avatars" {
  name          = "cruddur-avatars"
  protocol_type = "HTTP"
  cors_configuration {
    allow_origins = [var.frontend_origin]
    allow_methods = ["POST", "OPTIONS"]
    allow_headers = ["authorization", "content-type"]
    max_age       = 300
  }
}

resource "aws_apigatewayv2_authorizer" "cognito" {
  api_id                            = aws_apigatewayv2_api.avatars.id
  name                              = "CruddurCognitoAuthorizer"
  authorizer_type                   = "REQUEST"
  authorizer_uri                    = aws_lambda_function.authorizer.invoke_arn
  identity_sources                  = ["$request.header.Authorization"]
  authorizer_payload_format_version = "2.0"
  enable_simple_responses           = true
  authorizer_result_ttl_in_seconds  = 300
}

resource "aws_apigatewayv2_integration" "presigner" {
  api_id                 = aws_apigatewayv2_api.avatars.id
  integration_type       = "AWS_PROXY"
  integration_uri        = aws_lambda_function.presigner.invoke_arn
  payload_format_version = "2.0"
}

resource "aws_apigatewayv2_route" "key_upload" {
  api_id             = aws_apigatewayv2_api.avatars.id
  route_key          = "POST /avatars/key_upload"
  target             = "integrations/${aws_apigatewayv2_integration.presigner.id}"
  authorization_type = "CUSTOM"
  authorizer_id      = aws_apigatewayv2_authorizer.cognito.id
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.avatars.id
  name        = "$default"
  auto_deploy = true
}

output "api_endpoint" { value = aws_apigatewayv2_api.avatars.api_endpoint }
output "assets_domain" { value = aws_cloudfront_distribution.assets.domain_name }
