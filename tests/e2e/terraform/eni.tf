# Elastic network interfaces: one with a count of secondary private IPs, one with an explicit
# list, both in a security group, with descriptions and tags. An instance boots on the first
# (device index 0), the second is attached to it at device index 1, and an Elastic IP is
# associated with the first interface's primary private IP.
resource "aws_vpc" "eni" {
  cidr_block = "10.30.0.0/16"
  tags       = { Name = "tf-eni" }
}

resource "aws_subnet" "eni" {
  vpc_id            = aws_vpc.eni.id
  cidr_block        = "10.30.1.0/24"
  availability_zone = "eu-west-1a"
  tags              = { Name = "tf-eni" }
}

# An Elastic IP can only be associated in a VPC with an internet gateway.
resource "aws_internet_gateway" "eni" {
  vpc_id = aws_vpc.eni.id
}

resource "aws_security_group" "eni" {
  name        = "tf-eni"
  description = "network interfaces"
  vpc_id      = aws_vpc.eni.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["10.30.0.0/16"]
  }
}

resource "aws_network_interface" "counted" {
  subnet_id         = aws_subnet.eni.id
  private_ips_count = 2
  security_groups   = [aws_security_group.eni.id]
  description       = "tf counted"
  tags              = { Name = "tf-eni-counted" }
}

resource "aws_network_interface" "listed" {
  subnet_id       = aws_subnet.eni.id
  private_ips     = ["10.30.1.10", "10.30.1.11", "10.30.1.12"]
  security_groups = [aws_security_group.eni.id]
  description     = "tf listed"
  tags            = { Name = "tf-eni-listed" }
}

data "aws_ami" "al" {
  most_recent = true
  owners      = ["amazon"]
  filter {
    name   = "name"
    values = ["al2023-ami-*-x86_64"]
  }
}

# t3.small: three interfaces of four IPv4 addresses each (a t3.micro has two per interface).
resource "aws_instance" "eni" {
  ami           = data.aws_ami.al.id
  instance_type = "t3.small"
  network_interface {
    device_index         = 0
    network_interface_id = aws_network_interface.counted.id
  }
  tags = { Name = "tf-eni" }
  # The Elastic IP goes on the interface before the interface is attached (on AWS the
  # address then reports the instance the interface is attached to).
  depends_on = [aws_eip.eni]
}

resource "aws_network_interface_attachment" "listed" {
  instance_id          = aws_instance.eni.id
  network_interface_id = aws_network_interface.listed.id
  device_index         = 1
}

resource "aws_eip" "eni" {
  domain                    = "vpc"
  network_interface         = aws_network_interface.counted.id
  associate_with_private_ip = aws_network_interface.counted.private_ip
  depends_on                = [aws_internet_gateway.eni]
}

output "counted_id" {
  value = aws_network_interface.counted.id
}

output "listed_id" {
  value = aws_network_interface.listed.id
}

output "instance_id" {
  value = aws_instance.eni.id
}

output "eip_allocation_id" {
  value = aws_eip.eni.allocation_id
}
