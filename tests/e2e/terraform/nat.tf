# A public and a private subnet: the public one routes to an internet gateway, the private
# one through a NAT gateway (with an Elastic IP) in the public subnet.
resource "aws_vpc" "nat" {
  cidr_block           = "10.40.0.0/16"
  enable_dns_hostnames = true
  tags                 = { Name = "tf-nat" }
}

resource "aws_subnet" "public" {
  vpc_id                  = aws_vpc.nat.id
  cidr_block              = "10.40.0.0/24"
  availability_zone       = "eu-west-1a"
  map_public_ip_on_launch = true
  tags                    = { Name = "tf-nat-public" }
}

resource "aws_subnet" "private" {
  vpc_id            = aws_vpc.nat.id
  cidr_block        = "10.40.1.0/24"
  availability_zone = "eu-west-1a"
  tags              = { Name = "tf-nat-private" }
}

resource "aws_internet_gateway" "nat" {
  vpc_id = aws_vpc.nat.id
  tags   = { Name = "tf-nat" }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.nat.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.nat.id
  }
  tags = { Name = "tf-nat-public" }
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}

resource "aws_eip" "nat" {
  domain     = "vpc"
  tags       = { Name = "tf-nat" }
  depends_on = [aws_internet_gateway.nat]
}

resource "aws_nat_gateway" "nat" {
  allocation_id = aws_eip.nat.id
  subnet_id     = aws_subnet.public.id
  tags          = { Name = "tf-nat" }
  depends_on    = [aws_internet_gateway.nat]
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.nat.id
  tags   = { Name = "tf-nat-private" }
}

resource "aws_route" "private_default" {
  route_table_id         = aws_route_table.private.id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.nat.id
}

resource "aws_route_table_association" "private" {
  subnet_id      = aws_subnet.private.id
  route_table_id = aws_route_table.private.id
}

output "nat_gateway_id" {
  value = aws_nat_gateway.nat.id
}

output "private_route_table_id" {
  value = aws_route_table.private.id
}

output "private_subnet_id" {
  value = aws_subnet.private.id
}

output "eip_allocation_id" {
  value = aws_eip.nat.id
}
