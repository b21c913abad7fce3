# VPC endpoints (issue 16), as infrastructure code writes them: an S3 gateway endpoint on the
# main route table, found through the region's prefix list, and the seed's Session Manager
# interface endpoints (ssm, ec2messages, ssmmessages) with private DNS in one subnet, behind a
# security group that admits HTTPS from the VPC.
resource "aws_vpc" "main" {
  cidr_block           = "10.45.0.0/16"
  enable_dns_hostnames = true
  tags                 = { Name = "tf-endpoints" }
}

resource "aws_subnet" "private" {
  vpc_id            = aws_vpc.main.id
  cidr_block        = "10.45.1.0/24"
  availability_zone = "eu-west-1a"
}

resource "aws_security_group" "endpoints" {
  name   = "endpoints"
  vpc_id = aws_vpc.main.id
  ingress {
    protocol    = "tcp"
    from_port   = 443
    to_port     = 443
    cidr_blocks = [aws_vpc.main.cidr_block]
  }
}

data "aws_prefix_list" "s3" {
  name = "com.amazonaws.eu-west-1.s3"
}

data "aws_vpc_endpoint_service" "ssm" {
  service = "ssm"
}

resource "aws_vpc_endpoint" "s3" {
  vpc_id          = aws_vpc.main.id
  service_name    = "com.amazonaws.eu-west-1.s3"
  route_table_ids = [aws_vpc.main.main_route_table_id]
  tags            = { Name = "tf-s3" }
}

resource "aws_vpc_endpoint" "session" {
  for_each            = toset(["ssm", "ec2messages", "ssmmessages"])
  vpc_id              = aws_vpc.main.id
  service_name        = "com.amazonaws.eu-west-1.${each.key}"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = [aws_subnet.private.id]
  security_group_ids  = [aws_security_group.endpoints.id]
  private_dns_enabled = true
}

output "s3_prefix_list" {
  value = data.aws_prefix_list.s3.id
}

output "s3_endpoint_prefix_list" {
  value = aws_vpc_endpoint.s3.prefix_list_id
}

output "ssm_service" {
  value = data.aws_vpc_endpoint_service.ssm.service_name
}

output "ssm_dns" {
  value = aws_vpc_endpoint.session["ssm"].dns_entry[0].dns_name
}

output "ssm_enis" {
  value = aws_vpc_endpoint.session["ssm"].network_interface_ids
}
