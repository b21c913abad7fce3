# The rest of the VPC (issue 16): an IPv6 block and a subnet /64 of it, a network ACL with
# rules on a subnet, a peering connection accepted in the same account with routes on both
# sides, a virtual private gateway attached with route propagation, a customer gateway, and
# a traffic mirror filter with a rule.
resource "aws_vpc" "main" {
  cidr_block                       = "10.40.0.0/16"
  assign_generated_ipv6_cidr_block = true
  tags                             = { Name = "tf-v6" }
}

resource "aws_vpc" "peer" {
  cidr_block = "10.41.0.0/16"
}

resource "aws_subnet" "a" {
  vpc_id            = aws_vpc.main.id
  cidr_block        = "10.40.1.0/24"
  ipv6_cidr_block   = cidrsubnet(aws_vpc.main.ipv6_cidr_block, 8, 1)
  availability_zone = "eu-west-1a"
}

resource "aws_network_acl" "web" {
  vpc_id     = aws_vpc.main.id
  subnet_ids = [aws_subnet.a.id]
  ingress {
    protocol   = "tcp"
    rule_no    = 100
    action     = "allow"
    cidr_block = "0.0.0.0/0"
    from_port  = 443
    to_port    = 443
  }
  egress {
    protocol   = "tcp"
    rule_no    = 100
    action     = "allow"
    cidr_block = "0.0.0.0/0"
    from_port  = 1024
    to_port    = 65535
  }
}

# Inline rules and rule resources do not mix on one ACL (Terraform's own advice): the rule
# resource goes on a second ACL.
resource "aws_network_acl" "admin" {
  vpc_id = aws_vpc.main.id
}

resource "aws_network_acl_rule" "ssh" {
  network_acl_id = aws_network_acl.admin.id
  rule_number    = 110
  egress         = false
  protocol       = "tcp"
  rule_action    = "allow"
  cidr_block     = "10.0.0.0/8"
  from_port      = 22
  to_port        = 22
}

resource "aws_vpc_peering_connection" "pcx" {
  vpc_id      = aws_vpc.main.id
  peer_vpc_id = aws_vpc.peer.id
  auto_accept = true
}

resource "aws_route" "to_peer" {
  route_table_id            = aws_vpc.main.main_route_table_id
  destination_cidr_block    = aws_vpc.peer.cidr_block
  vpc_peering_connection_id = aws_vpc_peering_connection.pcx.id
}

resource "aws_route" "back" {
  route_table_id            = aws_vpc.peer.main_route_table_id
  destination_cidr_block    = aws_vpc.main.cidr_block
  vpc_peering_connection_id = aws_vpc_peering_connection.pcx.id
}

resource "aws_vpn_gateway" "vgw" {
  vpc_id = aws_vpc.main.id
}

resource "aws_vpn_gateway_route_propagation" "main" {
  vpn_gateway_id = aws_vpn_gateway.vgw.id
  route_table_id = aws_vpc.main.main_route_table_id
}

resource "aws_customer_gateway" "office" {
  bgp_asn    = 65000
  ip_address = "203.0.113.12"
  type       = "ipsec.1"
}

resource "aws_ec2_traffic_mirror_filter" "f" {
  description = "https"
}

resource "aws_ec2_traffic_mirror_filter_rule" "https" {
  traffic_mirror_filter_id = aws_ec2_traffic_mirror_filter.f.id
  destination_cidr_block   = "10.0.0.0/8"
  source_cidr_block        = "0.0.0.0/0"
  rule_number              = 1
  rule_action              = "accept"
  traffic_direction        = "ingress"
  protocol                 = 6
  destination_port_range {
    from_port = 443
    to_port   = 443
  }
}

output "ipv6" {
  value = aws_vpc.main.ipv6_cidr_block
}

output "subnet_ipv6" {
  value = aws_subnet.a.ipv6_cidr_block
}

output "pcx" {
  value = aws_vpc_peering_connection.pcx.accept_status
}
