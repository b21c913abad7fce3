# Images: an instance from the AMI that AWS publishes under an SSM parameter, an extra EBS
# volume attached to it and snapshotted, an AMI made from the instance, and an AMI registered
# from the snapshot.
data "aws_ssm_parameter" "al2023" {
  name = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

resource "aws_vpc" "img" {
  cidr_block = "10.50.0.0/16"
  tags       = { Name = "tf-img" }
}

resource "aws_subnet" "img" {
  vpc_id            = aws_vpc.img.id
  cidr_block        = "10.50.1.0/24"
  availability_zone = "eu-west-1a"
  tags              = { Name = "tf-img" }
}

resource "aws_instance" "src" {
  ami           = data.aws_ssm_parameter.al2023.insecure_value
  instance_type = "t3.micro"
  subnet_id     = aws_subnet.img.id
  tags          = { Name = "tf-img-src" }
}

resource "aws_ebs_volume" "data" {
  availability_zone = "eu-west-1a"
  size              = 4
  type              = "gp3"
  tags              = { Name = "tf-img-data" }
}

resource "aws_volume_attachment" "data" {
  device_name = "/dev/sdh"
  volume_id   = aws_ebs_volume.data.id
  instance_id = aws_instance.src.id
}

resource "aws_ebs_snapshot" "data" {
  volume_id   = aws_ebs_volume.data.id
  description = "tf data snapshot"
  tags        = { Name = "tf-img-data" }
  depends_on  = [aws_volume_attachment.data]
}

resource "aws_ami_from_instance" "copy" {
  name               = "tf-img-from-instance"
  description        = "made from the source instance"
  source_instance_id = aws_instance.src.id
  tags               = { Name = "tf-img-copy" }
  depends_on         = [aws_volume_attachment.data]
}

resource "aws_ami" "registered" {
  name                = "tf-img-registered"
  description         = "registered from a snapshot"
  virtualization_type = "hvm"
  architecture        = "x86_64"
  ena_support         = true
  root_device_name    = "/dev/xvda"
  ebs_block_device {
    device_name = "/dev/xvda"
    snapshot_id = aws_ebs_snapshot.data.id
    volume_type = "gp3"
  }
  tags = { Name = "tf-img-registered" }
}

output "instance_id" {
  value = aws_instance.src.id
}

output "ami_id" {
  value = aws_instance.src.ami
}

output "volume_id" {
  value = aws_ebs_volume.data.id
}

output "snapshot_id" {
  value = aws_ebs_snapshot.data.id
}

output "copy_ami_id" {
  value = aws_ami_from_instance.copy.id
}

output "registered_ami_id" {
  value = aws_ami.registered.id
}
