# An instance in the default VPC (no zone given) with root and extra EBS volumes, user data,
# metadata options, a key pair and an Elastic IP.
data "aws_ami" "al" {
  most_recent = true
  owners      = ["amazon"]
  filter {
    name   = "name"
    values = ["al2023-ami-*-x86_64"]
  }
}

data "aws_vpc" "default" {
  default = true
}

resource "aws_default_subnet" "a" {
  availability_zone = "eu-west-1a"
}

resource "aws_key_pair" "k" {
  key_name   = "tf-key"
  public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGVmtrP3bxPfm1m6fEwSfXZnlHOhvD7kp5hD0tJb/7Bk tf"
}

resource "aws_instance" "web" {
  ami           = data.aws_ami.al.id
  instance_type = "t3.micro"
  key_name      = aws_key_pair.k.key_name
  user_data     = "#!/bin/sh\necho hi > /tmp/hi\n"
  metadata_options {
    http_tokens                 = "required"
    http_put_response_hop_limit = 2
  }
  root_block_device {
    volume_size = 10
    volume_type = "gp3"
  }
  ebs_block_device {
    device_name = "/dev/sdf"
    volume_size = 5
  }
  tags = { Name = "tf-web" }
}

resource "aws_eip" "ip" {
  instance = aws_instance.web.id
  domain   = "vpc"
}
