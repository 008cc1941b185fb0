"""Service extensions: one module per AWS service moto needs help with."""

from __future__ import annotations

from typing import Any


def all_extensions(emu: Any) -> list[Any]:
    from .arc import ArcExtension
    from .autoscaling import AutoScalingExtension
    from .cloudwatch import CloudWatchExtension
    from .ecs import EcsExtension
    from .elasticache import ElastiCacheExtension
    from .iam import IamExtension
    from .rds import RdsExtension
    from .route53 import Route53Extension
    from .s3 import S3Extension

    rds = RdsExtension(emu)
    s3 = S3Extension(emu)
    route53 = Route53Extension(emu)
    return [
        rds,
        ElastiCacheExtension(emu),
        s3,
        route53,
        ArcExtension(emu),
        CloudWatchExtension(emu, rds, s3, route53),
        IamExtension(emu),
        EcsExtension(emu),
        AutoScalingExtension(emu),
    ]
