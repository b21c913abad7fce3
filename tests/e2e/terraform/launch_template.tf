# A launch template, and an instance launched from its latest version with a type of its own.
# The template gives no user data and no instance tags: with either, the provider plans a
# change to the instance at every plan, against AWS too (hashicorp/terraform-provider-aws
# #30825 and #39476 for user data).
data "aws_ami" "al" {
  most_recent = true
  owners      = ["amazon"]
  filter {
    name   = "name"
    values = ["al2023-ami-*-x86_64"]
  }
}

resource "aws_launch_template" "app" {
  name          = "tf-app"
  description   = "tf app servers"
  image_id      = data.aws_ami.al.id
  instance_type = "t3.micro"
  metadata_options {
    http_tokens                 = "required"
    http_put_response_hop_limit = 2
  }
  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size = 12
      volume_type = "gp3"
    }
  }
  tags = { team = "tf" }
}

resource "aws_instance" "from_template" {
  instance_type = "t3.small"
  launch_template {
    id      = aws_launch_template.app.id
    version = aws_launch_template.app.latest_version
  }
}

output "template_id" {
  value = aws_launch_template.app.id
}

output "latest_version" {
  value = aws_launch_template.app.latest_version
}

output "instance_id" {
  value = aws_instance.from_template.id
}
