include $(sort $(wildcard $(BR2_EXTERNAL_APIARY_PATH)/package/*/*.mk))
