"""A simulated fleet: sites and the devices installed at them.

Everything is drawn from one seeded random generator, so the same seed and
counts always give the same fleet (ids, sites, intervals, starting states).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from devices import DeviceKind

JURISDICTIONS = (
    "城东派出所", "城西派出所", "南湖派出所", "北关派出所", "高新区网格一", "开发区网格三",
)
SITE_CATEGORIES = ("key_unit", "small_venue", "residential", "other")
_SITE_NAMES = {
    "key_unit": ("人民医院", "中心商场", "第一中学", "会展中心", "纺织厂", "汽车站"),
    "small_venue": ("老王饭店", "便民超市", "如家旅馆", "小吃店", "网吧", "五金加工坊"),
    "residential": ("幸福里小区", "阳光花园", "锦绣苑", "滨江小区"),
    "other": ("物流仓库", "办公楼", "社区服务中心"),
}
_STREETS = ("解放路", "人民路", "建设大道", "中山路", "文化街", "长江路")
_VENDORS = {
    DeviceKind.SMOKE: (("海曼", "HM-608NB"), ("泛海三江", "JTY-GD-H361"), ("利达", "LD-NB3")),
    DeviceKind.ELECTRICAL: (("安科瑞", "ARCM300T"), ("正泰", "NDZ-EF4"), ("力创", "LC-EF300")),
    DeviceKind.CONTROLROOM: (("海湾", "GST-UIT6"), ("利达", "LD-128EN"), ("北大青鸟", "JBF-UT")),
}
_INSTALLERS = ("李伟", "张敏", "王强", "刘洋")


@dataclass(frozen=True, slots=True)
class SimSite:
    id: str
    name: str
    address: str
    category: str
    jurisdiction: str
    min_operators: int


@dataclass(frozen=True, slots=True)
class SimDevice:
    id: str
    kind: DeviceKind
    site: SimSite
    location: str
    vendor: str
    model: str
    installer: str
    interval_s: float
    """Nominal report interval of its telemetry (heartbeat)."""


@dataclass(frozen=True, slots=True)
class Fleet:
    sites: tuple[SimSite, ...]
    devices: tuple[SimDevice, ...]

    def of_kind(self, kind: DeviceKind) -> list[SimDevice]:
        return [d for d in self.devices if d.kind is kind]


def build_fleet(
    rng: random.Random,
    *,
    smoke: int,
    electrical: int,
    controlrooms: int,
    sites: int | None = None,
    smoke_interval_s: float | None = None,
    electrical_interval_s: float = 60.0,
    controlroom_interval_s: float = 60.0,
) -> Fleet:
    total = smoke + electrical + controlrooms
    n_sites = sites if sites is not None else max(1, controlrooms, total // 20)
    site_list = [_make_site(rng, i) for i in range(n_sites)]
    # Control rooms belong to key units: make the first sites key units if needed.
    for i in range(min(controlrooms, n_sites)):
        if site_list[i].category != "key_unit":
            s = site_list[i]
            site_list[i] = SimSite(s.id, rng.choice(_SITE_NAMES["key_unit"]) + f"{i + 1}号",
                                   s.address, "key_unit", s.jurisdiction, 2)

    devices: list[SimDevice] = []
    for i in range(smoke):
        imei = f"86{rng.randrange(10**6):06d}{i:07d}"  # IMEI-like, unique per index
        site = site_list[i % n_sites]
        drawn = rng.choice((4, 6, 12, 24)) * 3600.0  # always drawn: ids must not depend on it
        interval = smoke_interval_s or drawn
        devices.append(_make_device(rng, imei, DeviceKind.SMOKE, site, interval,
                                    f"{rng.randrange(1, 20)}层 {rng.randrange(1, 40):02d}室"))
    for i in range(electrical):
        site = site_list[(i * 7 + 3) % n_sites]
        devices.append(_make_device(rng, f"EM{rng.randrange(100, 1000)}{i:06d}",
                                    DeviceKind.ELECTRICAL, site, electrical_interval_s,
                                    f"配电箱 {rng.randrange(1, 9)}号"))
    for i in range(controlrooms):
        site = site_list[i % n_sites]
        devices.append(_make_device(rng, f"CR{rng.randrange(100, 1000)}{i:06d}",
                                    DeviceKind.CONTROLROOM, site, controlroom_interval_s,
                                    "消防控制室"))
    return Fleet(tuple(site_list), tuple(devices))


def _make_site(rng: random.Random, i: int) -> SimSite:
    category = rng.choices(SITE_CATEGORIES, weights=(3, 4, 2, 1))[0]
    name = f"{rng.choice(_SITE_NAMES[category])}{i + 1}号"
    address = f"{rng.choice(_STREETS)}{rng.randrange(1, 400)}号"
    return SimSite(f"S{i + 1:05d}", name, address, category, rng.choice(JURISDICTIONS),
                   2 if category == "key_unit" else 1)


def _make_device(rng: random.Random, device_id: str, kind: DeviceKind, site: SimSite,
                 interval_s: float, location: str) -> SimDevice:
    vendor, model = rng.choice(_VENDORS[kind])
    return SimDevice(device_id, kind, site, location, vendor, model, rng.choice(_INSTALLERS),
                     interval_s)
