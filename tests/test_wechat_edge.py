"""The WeChat/WeCom protocol edge without HTTP: published vectors, signatures, hostile input, replies."""

from __future__ import annotations

import base64
import json
import time

import pytest
import xmltodict
from wechatpy.crypto import PrpCrypto
from wechatpy.utils import to_text

from bot.edge.wechat import MAX_REPLY_BYTES, Channel, EdgeError, sanitize_reply, sign
from handlers.incoming import Incoming
from tests.conftest import shared_data
from tests.wechat_sim import event_xml, image_xml, link_xml, location_xml, text_xml, voice_xml

AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
NOW = 1_790_000_000


def _vectors() -> dict:
    path = shared_data("wechat_vectors.json")
    return json.loads(path.read_text(encoding="utf-8"))


def _query(token: str, timestamp: int | str = NOW, nonce: str = "123456") -> dict[str, str]:
    return {"timestamp": str(timestamp), "nonce": nonce, "signature": sign(token, str(timestamp), nonce)}


def plain(token: str = "tok") -> Channel:
    return Channel(name="wechat", token=token, clock=lambda: NOW)


class TestPublishedVectors:
    def test_official_account_encrypt_sample_decrypts_and_signs(self) -> None:
        v = _vectors()["official_account"][0]
        key = base64.b64decode(v["encoding_aes_key"] + "=")
        assert to_text(PrpCrypto(key).decrypt(v["encrypt"], v["app_id"])) == v["plaintext"]
        assert sign(v["token"], v["timestamp"], v["nonce"], v["encrypt"]) == v["msg_signature"]

    def test_compatible_mode_sample_parses_to_the_expected_message(self) -> None:
        v = _vectors()["official_account"][1]
        channel = Channel(
            name="wechat",
            token=v["token"],
            aes_key=v["encoding_aes_key"],
            app_id=v["app_id"],
            clock=lambda: int(v["timestamp"]),
        )
        query = _query(v["token"], v["timestamp"], v["nonce"]) | {
            "encrypt_type": "aes",
            "msg_signature": v["msg_signature"],
        }
        msg = channel.decode(query, v["body"].encode())
        expected = v["expected"]
        assert (msg.kind, msg.text, msg.msg_id, msg.sender) == (
            expected["MsgType"],
            expected["Content"],
            expected["MsgId"],
            expected["FromUserName"],
        )

    def test_url_verification_signature(self) -> None:
        v = _vectors()["official_account"][2]
        channel = Channel(name="wechat", token=v["token"], clock=lambda: int(v["timestamp"]))
        query = {
            "timestamp": v["timestamp"],
            "nonce": v["nonce"],
            "signature": v["signature"],
            "echostr": "e42",
        }
        assert channel.verify_url(query) == "e42"
        with pytest.raises(EdgeError) as error:
            channel.verify_url(query | {"signature": "0" * 40})
        assert error.value.status == 403

    def test_wecom_url_verification_decrypts_echostr(self) -> None:
        v = _vectors()["wecom"][0]
        channel = Channel(
            name="wecom",
            token=v["token"],
            aes_key=v["encoding_aes_key"],
            app_id=v["corp_id"],
            clock=lambda: int(v["timestamp"]),
        )
        query = {
            "msg_signature": v["msg_signature"],
            "timestamp": v["timestamp"],
            "nonce": v["nonce"],
            "echostr": v["echostr"],
        }
        assert channel.verify_url(query) == v["expected_echo"]
        with pytest.raises(EdgeError):
            channel.verify_url(query | {"msg_signature": v["msg_signature"][::-1]})

    def test_wecom_message_decrypts(self) -> None:
        v = _vectors()["wecom"][1]
        channel = Channel(
            name="wecom",
            token=v["token"],
            aes_key=v["encoding_aes_key"],
            app_id=v["corp_id"],
            clock=lambda: int(v["timestamp"]),
        )
        query = {"msg_signature": v["msg_signature"], "timestamp": v["timestamp"], "nonce": v["nonce"]}
        msg = channel.decode(query, v["body"].encode())
        assert (msg.channel, msg.kind, msg.text, msg.sender, msg.agent_id) == (
            "wecom",
            "text",
            "hello",
            "mycreate",
            "218",
        )


class TestVerification:
    def test_good_signature_is_accepted(self) -> None:
        msg = plain().decode(_query("tok"), text_xml("oUser", "你好", create_time=NOW).encode())
        assert msg.text == "你好"

    @pytest.mark.parametrize("field", ["signature", "timestamp", "nonce"])
    def test_tampered_query_is_refused(self, field: str) -> None:
        query = _query("tok")
        query[field] = query[field][:-1] + ("0" if query[field][-1] != "0" else "1")
        with pytest.raises(EdgeError) as error:
            plain().decode(query, text_xml("oUser", "x").encode())
        assert error.value.status == 403

    def test_missing_signature_is_refused(self) -> None:
        query = _query("tok")
        del query["signature"]
        with pytest.raises(EdgeError) as error:
            plain().decode(query, text_xml("oUser", "x").encode())
        assert error.value.status == 403

    @pytest.mark.parametrize(
        ("offset", "ok"), [(0, True), (299, True), (-299, True), (301, False), (-301, False)]
    )
    def test_timestamp_window_is_five_minutes(self, offset: int, ok: bool) -> None:
        query = _query("tok", NOW + offset)
        body = text_xml("oUser", "x").encode()
        if ok:
            assert plain().decode(query, body).text == "x"
        else:
            with pytest.raises(EdgeError) as error:
                plain().decode(query, body)
            assert error.value.status == 403

    def test_bad_msg_signature_in_safe_mode_is_refused(self) -> None:
        channel = Channel(name="wechat", token="tok", aes_key=AES_KEY, app_id="wxapp", clock=lambda: NOW)
        encrypt = to_text(PrpCrypto(base64.b64decode(AES_KEY + "=")).encrypt(text_xml("oU", "x"), "wxapp"))
        body = f"<xml><ToUserName>gh</ToUserName><Encrypt>{encrypt}</Encrypt></xml>".encode()
        query = _query("tok") | {"encrypt_type": "aes", "msg_signature": "f" * 40}
        with pytest.raises(EdgeError) as error:
            channel.decode(query, body)
        assert error.value.status == 403

    def test_message_for_another_app_id_is_refused(self) -> None:
        channel = Channel(name="wechat", token="tok", aes_key=AES_KEY, app_id="wxapp", clock=lambda: NOW)
        encrypt = to_text(PrpCrypto(base64.b64decode(AES_KEY + "=")).encrypt(text_xml("oU", "x"), "wxOTHER"))
        body = f"<xml><ToUserName>gh</ToUserName><Encrypt>{encrypt}</Encrypt></xml>".encode()
        query = _query("tok") | {
            "encrypt_type": "aes",
            "msg_signature": sign("tok", str(NOW), "123456", encrypt),
        }
        with pytest.raises(EdgeError) as error:
            channel.decode(query, body)
        assert error.value.status == 400


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">' for i in range(1, 10))
    + "]><xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>"
    + "<MsgType>text</MsgType><Content>&lol9;</Content><MsgId>1</MsgId></xml>"
)
XXE = (
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>"
    "<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>1</MsgId></xml>"
)
HOSTILE = {
    "billion-laughs": BILLION_LAUGHS,
    "external-entity": XXE,
    "lowercase-doctype": XXE.replace("DOCTYPE", "doctype"),
    "malformed": "<xml><ToUserName>a</ToUserName><FromUserName>b",
    "not-xml": "hello there",
    "empty": "",
    "wrong-root": "<html><body/></html>",
    "missing-sender": "<xml><ToUserName>a</ToUserName><CreateTime>1</CreateTime><MsgType>text</MsgType>"
    "<Content>x</Content><MsgId>1</MsgId></xml>",
    "missing-msgid": "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>"
    "<MsgType>text</MsgType><Content>x</Content></xml>",
    "missing-content": "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>"
    "<MsgType>text</MsgType><MsgId>1</MsgId></xml>",
    "nested-content": "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>"
    "<MsgType>text</MsgType><Content><b>x</b></Content><MsgId>1</MsgId></xml>",
    "bad-createtime": "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>soon</CreateTime>"
    "<MsgType>text</MsgType><Content>x</Content><MsgId>1</MsgId></xml>",
    "bad-location": "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>"
    "<MsgType>location</MsgType><Location_X>north</Location_X><Location_Y>1</Location_Y><MsgId>1</MsgId></xml>",
}


class TestHostileInput:
    @pytest.mark.parametrize("name", sorted(HOSTILE))
    def test_rejected_with_400_quickly(self, name: str) -> None:
        started = time.perf_counter()
        with pytest.raises(EdgeError) as error:
            plain().decode(_query("tok"), HOSTILE[name].encode())
        elapsed = time.perf_counter() - started
        assert error.value.status == 400
        assert elapsed < 0.05

    @pytest.mark.parametrize("name", ["billion-laughs", "external-entity", "malformed"])
    def test_rejected_inside_the_encrypted_envelope_too(self, name: str) -> None:
        channel = Channel(name="wechat", token="tok", aes_key=AES_KEY, app_id="wxapp", clock=lambda: NOW)
        encrypt = to_text(PrpCrypto(base64.b64decode(AES_KEY + "=")).encrypt(HOSTILE[name], "wxapp"))
        body = f"<xml><ToUserName>gh</ToUserName><Encrypt>{encrypt}</Encrypt></xml>".encode()
        query = _query("tok") | {
            "encrypt_type": "aes",
            "msg_signature": sign("tok", str(NOW), "123456", encrypt),
        }
        with pytest.raises(EdgeError) as error:
            channel.decode(query, body)
        assert error.value.status == 400

    def test_oversized_body_is_413(self) -> None:
        body = text_xml("oU", "长" * 30_000).encode()
        assert len(body) > 64 * 1024
        with pytest.raises(EdgeError) as error:
            plain().decode(_query("tok"), body)
        assert error.value.status == 413


class TestParsing:
    def decode(self, xml: str) -> Incoming:
        return plain().decode(_query("tok"), xml.encode())

    def test_text(self) -> None:
        msg = self.decode(text_xml("oU", "楼道灯坏了", msg_id="42", create_time=NOW))
        assert (msg.kind, msg.text, msg.msg_id, msg.sender, msg.account) == (
            "text",
            "楼道灯坏了",
            "42",
            "oU",
            "gh_gridbot",
        )
        assert msg.dedupe_key == "42"

    def test_voice_uses_recognition_as_text(self) -> None:
        msg = self.decode(voice_xml("oU", "垃圾没人收"))
        assert (msg.kind, msg.text, msg.media_id) == ("voice", "垃圾没人收", "media-voice-1")

    def test_image(self) -> None:
        msg = self.decode(image_xml("oU"))
        assert (msg.kind, msg.media_id, msg.pic_url) == (
            "image",
            "media-img-1",
            "http://mmbiz.example/pic.jpg",
        )

    def test_location(self) -> None:
        msg = self.decode(location_xml("oU", 25.431, 119.007, "筱塘新村"))
        assert (msg.kind, msg.location, msg.label) == ("location", (25.431, 119.007), "筱塘新村")

    def test_link(self) -> None:
        msg = self.decode(link_xml("oU", "路灯不亮", "http://example.org/a"))
        assert (msg.kind, msg.text, msg.url) == ("link", "路灯不亮", "http://example.org/a")

    @pytest.mark.parametrize(
        ("event", "key", "expected_event", "expected_key"),
        [
            ("subscribe", None, "subscribe", None),
            ("subscribe", "qrscene_123", "subscribe", "123"),
            ("unsubscribe", None, "unsubscribe", None),
            ("CLICK", "MENU_REPORT", "click", "MENU_REPORT"),
            ("VIEW", "http://example.org", "view", "http://example.org"),
        ],
    )
    def test_events(self, event: str, key: str | None, expected_event: str, expected_key: str | None) -> None:
        msg = self.decode(event_xml("oU", event, key, create_time=NOW))
        assert (msg.kind, msg.event, msg.event_key, msg.msg_id) == (
            "event",
            expected_event,
            expected_key,
            None,
        )
        assert msg.dedupe_key == f"oU:{NOW}:{expected_event}"

    def test_location_event(self) -> None:
        xml = event_xml("oU", "LOCATION").replace(
            "</xml>", "<Latitude>25.43</Latitude><Longitude>119.01</Longitude><Precision>30</Precision></xml>"
        )
        msg = self.decode(xml)
        assert (msg.event, msg.location) == ("location", (25.43, 119.01))

    def test_unknown_kind_is_kept_as_other(self) -> None:
        msg = self.decode(
            "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>"
            "<MsgType>video</MsgType><MediaId>m</MediaId><MsgId>9</MsgId></xml>"
        )
        assert (msg.kind, msg.extra) == ("other", {"msg_type": "video"})


class TestReplies:
    INCOMING = Incoming(channel="wechat", sender="oU", account="gh", kind="text", create_time=NOW, msg_id="1")

    @pytest.mark.parametrize(
        "text", ["正常回复", "a]]>b", "]]>]]>", "控制\x00字符\x07\x1b还有\ufffe", "<tag>&amp;</tag>"]
    )
    def test_reply_is_valid_xml_with_the_same_visible_text(self, text: str) -> None:
        body = plain().render_reply(self.INCOMING, text, _query("tok"))
        fields = xmltodict.parse(body)["xml"]
        expected = "".join(ch for ch in text if ch >= " " or ch in "\n\t").replace("\ufffe", "")
        assert fields["Content"] == expected
        assert (fields["ToUserName"], fields["FromUserName"], fields["MsgType"]) == ("oU", "gh", "text")

    def test_nothing_to_say_is_success(self) -> None:
        assert plain().render_reply(self.INCOMING, None, _query("tok")) == "success"
        assert plain().render_reply(self.INCOMING, "", _query("tok")) == "success"

    def test_long_reply_is_capped_at_2048_bytes(self) -> None:
        capped = sanitize_reply("网格" * 2000)
        assert len(capped.encode()) <= MAX_REPLY_BYTES
        assert capped.endswith("…")

    def test_encrypted_reply_round_trips(self) -> None:
        channel = Channel(name="wechat", token="tok", aes_key=AES_KEY, app_id="wxapp", clock=lambda: NOW)
        body = channel.render_reply(
            self.INCOMING, "您好", _query("tok", nonce="777") | {"encrypt_type": "aes"}
        )
        envelope = xmltodict.parse(body)["xml"]
        assert envelope["MsgSignature"] == sign("tok", envelope["TimeStamp"], "777", envelope["Encrypt"])
        inner = to_text(PrpCrypto(base64.b64decode(AES_KEY + "=")).decrypt(envelope["Encrypt"], "wxapp"))
        assert xmltodict.parse(inner)["xml"]["Content"] == "您好"
